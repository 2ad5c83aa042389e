import { describe, expect, it } from "vitest";
import { JetstreamFilter } from "../../src/jetstream/filter";
import {
  MAX_WANTED_COLLECTIONS,
  MAX_WANTED_DIDS,
  parseSubscribeParams,
  parseSubscriberMessage,
} from "../../src/jetstream/options";

const q = (s: string) => parseSubscribeParams(new URLSearchParams(s));

describe("query parameters", () => {
  it("reads repeated wantedCollections (NSIDs and prefixes) and wantedDids", () => {
    const r = q(
      "wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.graph.*&wantedCollections=app.bsky.feed.post&wantedDids=did:plc:abc&cursor=1700000000000000&requireHello=true&unknown=1",
    );
    expect(r).toEqual({
      ok: true,
      params: {
        options: {
          wantedCollections: { exact: ["app.bsky.feed.post"], prefixes: ["app.bsky.graph."] },
          wantedDids: ["did:plc:abc"],
          maxMessageSizeBytes: 0,
        },
        cursorUs: 1_700_000_000_000_000,
        requireHello: true,
      },
    });
  });

  it("takes nothing as everything, live", () => {
    expect(q("")).toEqual({
      ok: true,
      params: {
        options: { wantedCollections: null, wantedDids: null, maxMessageSizeBytes: 0 },
        cursorUs: null,
        requireHello: false,
      },
    });
  });

  it("refuses malformed collections, DIDs, cursors and too many values", () => {
    expect(q("wantedCollections=not a nsid").ok).toBe(false);
    expect(q("wantedCollections=app.bsky.fo*").ok).toBe(false);
    expect(q("wantedDids=did:nope").ok).toBe(false);
    expect(q("cursor=abc").ok).toBe(false);
    expect(q("cursor=-5").ok).toBe(false);
    const many = Array.from(
      { length: MAX_WANTED_COLLECTIONS + 1 },
      (_, i) => `wantedCollections=com.example.c${i}`,
    );
    expect(q(many.join("&")).ok).toBe(false);
    expect(q(many.slice(1).join("&")).ok).toBe(true);
  });

  it("reads maxMessageSizeBytes as Jetstream does: malformed or negative is no limit", () => {
    const size = (v: string) => {
      const r = q(`maxMessageSizeBytes=${v}`);
      return r.ok ? r.params.options.maxMessageSizeBytes : null;
    };
    expect(size("1000")).toBe(1000);
    expect(size("-3")).toBe(0);
    expect(size("lots")).toBe(0);
    expect(size("99999999999")).toBe(0);
  });

  it("requireHello is only the literal true", () => {
    const hello = (v: string) => {
      const r = q(`requireHello=${v}`);
      return r.ok && r.params.requireHello;
    };
    expect(hello("true")).toBe(true);
    expect(hello("True")).toBe(false);
    expect(hello("1")).toBe(false);
  });
});

describe("options_update messages", () => {
  it("reads a valid update", () => {
    expect(
      parseSubscriberMessage(
        JSON.stringify({
          type: "options_update",
          payload: { wantedCollections: ["app.bsky.feed.like"], maxMessageSizeBytes: 500 },
        }),
      ),
    ).toEqual({
      kind: "options_update",
      options: {
        wantedCollections: { exact: ["app.bsky.feed.like"], prefixes: [] },
        wantedDids: null,
        maxMessageSizeBytes: 500,
      },
    });
  });

  it("ignores other message types and answers invalid ones with a reason", () => {
    expect(parseSubscriberMessage(JSON.stringify({ type: "hello" }))).toEqual({ kind: "ignored" });
    for (const bad of [
      "not json",
      "[]",
      JSON.stringify({ type: "options_update" }),
      JSON.stringify({
        type: "options_update",
        payload: { wantedCollections: "app.bsky.feed.post" },
      }),
      JSON.stringify({ type: "options_update", payload: { wantedDids: ["nope"] } }),
      JSON.stringify({
        type: "options_update",
        payload: {
          wantedDids: Array.from({ length: MAX_WANTED_DIDS + 1 }, (_, i) => `did:plc:a${i}`),
        },
      }),
    ]) {
      expect(parseSubscriberMessage(bad).kind).toBe("invalid");
    }
  });
});

describe("filter", () => {
  const filter = new JetstreamFilter({
    wantedCollections: { exact: ["app.bsky.feed.post"], prefixes: ["app.bsky.graph."] },
    wantedDids: ["did:plc:alice"],
    maxMessageSizeBytes: 100,
  });

  it("matches exact collections and prefixes, and only the wanted DIDs", () => {
    expect(filter.wantsCollection("app.bsky.feed.post")).toBe(true);
    expect(filter.wantsCollection("app.bsky.graph.follow")).toBe(true);
    expect(filter.wantsCollection("app.bsky.feed.like")).toBe(false);
    expect(filter.wantsCollection("app.bsky.graphs.x")).toBe(false);
    expect(filter.wantsDid("did:plc:alice")).toBe(true);
    expect(filter.wantsDid("did:plc:bob")).toBe(false);
    expect(filter.fits(100)).toBe(true);
    expect(filter.fits(101)).toBe(false);
  });
});
