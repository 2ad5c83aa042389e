import { lexToJson } from "@atproto/lexicon";
import { cborToLexRecord } from "@atproto/repo";
import { describe, expect, it } from "vitest";
import { finishMessage, JetstreamEvent } from "../../src/jetstream/events";
import { JetstreamFilter } from "../../src/jetstream/filter";
import { ALL_EVENTS } from "../../src/jetstream/options";
import { readCar } from "../../src/protocol/car";
import { encodeDagCbor } from "../../src/protocol/cbor";
import { CID } from "../../src/protocol/cid";
import { dataModelToJson } from "../../src/protocol/data-model";
import { decodeFrame, encodeFrame } from "../../src/protocol/frame";
import { loadCapturedFrames } from "../fixtures/captured";

const captured = loadCapturedFrames();
const all = new JetstreamFilter(ALL_EVENTS);

function messages(frame: Uint8Array, filter = all, timeUs = 1_700_000_000_000_000) {
  return new JetstreamEvent(1, frame)
    .messagesFor(filter)
    .map((m) => JSON.parse(finishMessage(m, timeUs)) as Record<string, unknown>);
}

describe("Jetstream messages from captured reference PDS frames", () => {
  const commits = captured.filter((f) => f.kind === "commit");

  it("has commits with creates, updates and deletes to check", () => {
    const actions = new Set(commits.flatMap((f) => (f.ops ?? []).map((op) => op[0])));
    expect(actions).toEqual(new Set(["create", "update", "delete"]));
  });

  it("gives one message per op, shaped as Jetstream's, with the record @atproto decodes", () => {
    for (const f of commits) {
      const frame = decodeFrame(f.bytes);
      if (frame.kind !== "commit") throw new Error("not a commit");
      const blocks = readCar(frame.body.blocks).blocks;
      const got = messages(f.bytes);
      const expected = frame.body.ops.map((op) => {
        const [collection, rkey] = op.path.split("/") as [string, string];
        const head = { rev: frame.body.rev, operation: op.action, collection, rkey };
        if (op.action === "delete") return head;
        const block = blocks.get(String(op.cid)) as Uint8Array;
        const record = lexToJson(cborToLexRecord(block));
        return { ...head, record, cid: String(op.cid) };
      });
      expect(got).toEqual(
        expected.map((commit) => ({
          did: frame.body.repo,
          time_us: 1_700_000_000_000_000,
          kind: "commit",
          commit,
        })),
      );
      // Jetstream's key order, and no record or cid on a delete
      for (const m of got) {
        const commit = m.commit as Record<string, unknown>;
        expect(Object.keys(m)).toEqual(["did", "time_us", "kind", "commit"]);
        expect(Object.keys(commit)).toEqual(
          commit.operation === "delete"
            ? ["rev", "operation", "collection", "rkey"]
            : ["rev", "operation", "collection", "rkey", "record", "cid"],
        );
      }
    }
  });

  it("shapes identity and account events as Jetstream does", () => {
    const identity = captured.find((f) => f.kind === "identity");
    const account = captured.find((f) => f.kind === "account");
    if (!identity || !account) throw new Error("fixtures lack identity or account frames");
    const [id] = messages(identity.bytes, all, 42);
    expect(id).toEqual({
      did: identity.did,
      time_us: 42,
      kind: "identity",
      identity: {
        did: identity.did,
        ...(identity.handle ? { handle: identity.handle } : {}),
        seq: identity.seq,
        time: (decodeFrame(identity.bytes).body as { time: string }).time,
      },
    });
    const [acct] = messages(account.bytes, all, 43);
    expect(acct).toMatchObject({
      did: account.did,
      time_us: 43,
      kind: "account",
      account: { active: account.active, did: account.did, seq: account.seq },
    });
    expect(Object.keys(acct?.account as object)).toEqual(
      account.status
        ? ["active", "did", "seq", "status", "time"]
        : ["active", "did", "seq", "time"],
    );
  });

  it("says nothing for #sync (not on Jetstream's v1 wire)", () => {
    const sync = encodeFrame({
      kind: "sync",
      body: {
        seq: 5,
        did: "did:plc:abc",
        blocks: new Uint8Array([1]),
        rev: "3k",
        time: "2024-01-01T00:00:00Z",
      },
    });
    expect(messages(sync)).toEqual([]);
  });

  it("filters before it converts: a filter that matches nothing decodes no record", () => {
    const f = commits.find((c) => (c.ops ?? []).some((op) => op[0] === "create"));
    if (!f) throw new Error("no create");
    const none = new JetstreamFilter({
      wantedCollections: { exact: ["com.example.nothing"], prefixes: [] },
      wantedDids: null,
      maxMessageSizeBytes: 0,
    });
    expect(messages(f.bytes, none)).toEqual([]);
    const otherDid = new JetstreamFilter({ ...ALL_EVENTS, wantedDids: ["did:plc:someoneelse"] });
    expect(messages(f.bytes, otherDid)).toEqual([]);
    const collection = (f.ops?.[0]?.[1] ?? "").split("/")[0] as string;
    const prefix = new JetstreamFilter({
      ...ALL_EVENTS,
      wantedCollections: {
        exact: [],
        prefixes: [`${collection.split(".").slice(0, 2).join(".")}.`],
      },
    });
    expect(messages(f.bytes, prefix).length).toBeGreaterThan(0);
  });
});

describe("data model JSON", () => {
  it("writes CID links as $link and bytes as unpadded base64 $bytes", () => {
    const cid = CID.parse("bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a");
    const value = { a: cid, b: new Uint8Array([1, 2, 3, 4]), c: [{ d: null, e: 7, f: "x" }] };
    expect(dataModelToJson(value)).toEqual({
      a: { $link: cid.toString() },
      b: { $bytes: "AQIDBA" },
      c: [{ d: null, e: 7, f: "x" }],
    });
    // what @atproto writes for the same value
    expect(dataModelToJson(value)).toEqual(lexToJson(cborToLexRecord(encodeDagCbor(value))));
  });
});
