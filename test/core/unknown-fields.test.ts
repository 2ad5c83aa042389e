import { describe, expect, it } from "vitest";
import { encodeDagCbor } from "../../src/protocol/cbor";
import { checkAccountEvent, checkIdentityEvent } from "../../src/protocol/event-checks";
import {
  type AccountBody,
  canonicalEventFrame,
  decodeFrame,
  encodeFrame,
  type IdentityBody,
  type SequencedFrame,
} from "../../src/protocol/frame";
import {
  MAX_ACCOUNT_FRAME_BYTES,
  MAX_IDENTITY_FRAME_BYTES,
  MAX_SYNC_FRAME_BYTES,
} from "../../src/protocol/limits";
import { loadCapturedFrames } from "../fixtures/captured";
import { errorName } from "../support/protocol-errors";

// Fields the lexicon does not define are not relayed, and each message type is bounded by what
// its fields allow (issue 10, items 5 and 7): a host cannot attach megabytes to an #identity of
// its own account and have every consumer receive and replay them.

const DID = "did:plc:unknownfieldsunknownfield";
const TIME = "2024-01-01T00:00:00.000Z";
const captured = loadCapturedFrames();

function frameOf(header: unknown, body: unknown): Uint8Array {
  return new Uint8Array([...encodeDagCbor(header), ...encodeDagCbor(body)]);
}

function sequenced(bytes: Uint8Array): SequencedFrame {
  const frame = decodeFrame(bytes);
  if (frame.kind === "info" || frame.kind === "error") throw new Error("not an event");
  return frame;
}

describe("canonicalEventFrame", () => {
  it("gives back the upstream's bytes for every event captured from the reference PDS", () => {
    const events = captured.filter((c) =>
      ["commit", "sync", "identity", "account"].includes(c.kind),
    );
    expect(events.length).toBeGreaterThan(10);
    for (const c of events) {
      expect(
        Buffer.from(canonicalEventFrame(sequenced(c.bytes))).equals(Buffer.from(c.bytes)),
      ).toBe(true);
    }
  });

  it("forwards a captured event's own bytes (no re-encoding), identical to the encoding of its fields", () => {
    const events = captured.filter((c) =>
      ["commit", "sync", "identity", "account"].includes(c.kind),
    );
    for (const c of events) {
      // as a socket delivers it: a frame in a buffer of its own (the fixtures are views)
      const bytes = c.bytes.slice();
      const frame = sequenced(bytes);
      const forwarded = canonicalEventFrame(frame);
      // the very bytes received: nothing was encoded
      expect(forwarded).toBe(bytes);
      // and what encoding the lexicon's fields gives (the path for frames with extra fields)
      expect(Buffer.from(encodeFrame(frame)).equals(Buffer.from(c.bytes))).toBe(true);
      expect(Object.isFrozen(frame.body)).toBe(true);
    }
    // a frame inside a larger buffer is forwarded as a copy of just its bytes
    const c = events[0] as (typeof events)[number];
    const padded = new Uint8Array(c.bytes.byteLength + 10);
    padded.set(c.bytes, 5);
    const view = padded.subarray(5, 5 + c.bytes.byteLength);
    const copy = canonicalEventFrame(sequenced(view));
    expect(copy).not.toBe(view);
    expect(copy.buffer.byteLength).toBe(c.bytes.byteLength);
    expect(Buffer.from(copy).equals(Buffer.from(c.bytes))).toBe(true);
  });

  it("re-encodes an event with a non-ASCII string rather than forwarding its bytes", () => {
    // not a valid event (the ingester drops it), but canonicalEventFrame must not rely on that
    const identity = frameOf(
      { op: 1, t: "#identity" },
      { seq: 7, did: DID, time: TIME, handle: "caf\u00e9.test" },
    );
    const forwarded = canonicalEventFrame(sequenced(identity));
    expect(forwarded).not.toBe(identity);
    expect(Buffer.from(forwarded).equals(Buffer.from(identity))).toBe(true);
  });

  it("leaves out an #identity's and an #account's unknown fields", () => {
    const identity = frameOf(
      { op: 1, t: "#identity" },
      { seq: 7, did: DID, time: TIME, handle: "alice.test", zExtra: new Uint8Array(1_000) },
    );
    const forwarded = canonicalEventFrame(sequenced(identity));
    expect(forwarded.byteLength).toBeLessThan(200);
    expect(
      Buffer.from(forwarded).equals(
        Buffer.from(
          frameOf(
            { op: 1, t: "#identity" },
            { seq: 7, did: DID, time: TIME, handle: "alice.test" },
          ),
        ),
      ),
    ).toBe(true);

    const account = frameOf(
      { op: 1, t: "#account", extra: "header field" },
      {
        seq: 8,
        did: DID,
        time: TIME,
        active: false,
        status: "deactivated",
        aExtra: "x".repeat(500),
      },
    );
    expect(decodeFrame(canonicalEventFrame(sequenced(account)))).toEqual({
      kind: "account",
      body: { seq: 8, did: DID, time: TIME, active: false, status: "deactivated" },
    });
    expect(canonicalEventFrame(sequenced(account)).byteLength).toBeLessThan(150);
  });

  it("leaves out a #commit's unknown outer and op fields and keeps blocks byte for byte", () => {
    const original = captured.find((c) => c.kind === "commit" && (c.ops?.length ?? 0) > 0);
    if (!original) throw new Error("no captured commit with ops");
    const body = decodeFrame(original.bytes).body as Record<string, unknown>;
    const raw = {
      ...body,
      zPadding: new Uint8Array(3_000_000),
      ops: (body.ops as Record<string, unknown>[]).map((op) => ({ ...op, note: "extra" })),
    };
    const padded = frameOf({ op: 1, t: "#commit" }, raw);
    expect(padded.byteLength).toBeGreaterThan(3_000_000);
    const forwarded = canonicalEventFrame(sequenced(padded));
    expect(Buffer.from(forwarded).equals(Buffer.from(original.bytes))).toBe(true);
  });
});

describe("frame size bounds per message type", () => {
  it("refuses an #identity carrying 3 MB of an unknown field before decoding its body", () => {
    const bytes = frameOf(
      { op: 1, t: "#identity" },
      { seq: 1, did: DID, time: TIME, zPadding: new Uint8Array(3_000_000) },
    );
    expect(errorName(() => decodeFrame(bytes))).toBe("TooBig");
  });

  it.each([
    ["#identity", MAX_IDENTITY_FRAME_BYTES, { seq: 1, did: DID, time: TIME }],
    ["#account", MAX_ACCOUNT_FRAME_BYTES, { seq: 1, did: DID, time: TIME, active: true }],
    [
      "#sync",
      MAX_SYNC_FRAME_BYTES,
      { seq: 1, did: DID, time: TIME, rev: "3jzfcijpj2z2a", blocks: new Uint8Array(10) },
    ],
  ])("bounds %s at %d bytes", (t, max, body) => {
    const header = encodeDagCbor({ op: 1, t });
    const base = encodeDagCbor({ ...body, z: new Uint8Array(0) }).byteLength + header.byteLength;
    const fits = frameOf({ op: 1, t }, { ...body, z: new Uint8Array(max - base - 3) });
    expect(fits.byteLength).toBeLessThanOrEqual(max);
    expect(errorName(() => decodeFrame(fits))).toBe("no error");
    const over = frameOf({ op: 1, t }, { ...body, z: new Uint8Array(max - base + 3) });
    expect(over.byteLength).toBeGreaterThan(max);
    expect(errorName(() => decodeFrame(over))).toBe("TooBig");
  });

  it("still takes the largest #identity the lexicon allows", () => {
    const longest: IdentityBody = {
      seq: Number.MAX_SAFE_INTEGER,
      did: `did:web:${"a".repeat(2040)}`,
      time: `1985-04-12T23:20:50.${"1".repeat(20)}+07:00`,
      handle: `${"a".repeat(60)}.${"b".repeat(60)}.${"c".repeat(60)}.${"d".repeat(60)}.test`,
    };
    const bytes = encodeFrame({ kind: "identity", body: longest });
    expect(decodeFrame(bytes)).toEqual({ kind: "identity", body: longest });
  });
});

describe("#identity and #account field formats", () => {
  const identity: IdentityBody = { seq: 1, did: DID, time: TIME, handle: "alice.test" };
  const account: AccountBody = {
    seq: 1,
    did: DID,
    time: TIME,
    active: false,
    status: "deactivated",
  };

  it("accepts well-formed events, including handle.invalid and statuses outside the known set", () => {
    expect(errorName(() => checkIdentityEvent(identity))).toBe("no error");
    expect(errorName(() => checkIdentityEvent({ ...identity, handle: "handle.invalid" }))).toBe(
      "no error",
    );
    expect(errorName(() => checkAccountEvent(account))).toBe("no error");
    expect(errorName(() => checkAccountEvent({ ...account, status: "futureStatus" }))).toBe(
      "no error",
    );
  });

  it.each<[string, () => void]>([
    ["a time that is not a datetime", () => checkIdentityEvent({ ...identity, time: "yesterday" })],
    [
      "a time without a timezone",
      () => checkIdentityEvent({ ...identity, time: "2024-01-01T00:00:00" }),
    ],
    [
      "a handle that is not a handle",
      () => checkIdentityEvent({ ...identity, handle: "not a handle" }),
    ],
    ["a DID that is not a DID", () => checkIdentityEvent({ ...identity, did: "alice" })],
    ["an account time that is not a datetime", () => checkAccountEvent({ ...account, time: "" })],
    [
      "a status of 200 characters",
      () => checkAccountEvent({ ...account, status: "x".repeat(200) }),
    ],
    ["a status with spaces", () => checkAccountEvent({ ...account, status: "taken down" })],
  ])("refuses %s", (_what, check) => {
    expect(errorName(check)).toBe("InvalidSyntax");
  });
});

describe("#info and error frames", () => {
  it("take names from the open set and refuse anything else", () => {
    expect(decodeFrame(frameOf({ op: 1, t: "#info" }, { name: "OutdatedCursor" }))).toEqual({
      kind: "info",
      body: { name: "OutdatedCursor" },
    });
    expect(decodeFrame(frameOf({ op: -1 }, { error: "FutureCursor", message: "ahead" }))).toEqual({
      kind: "error",
      body: { error: "FutureCursor", message: "ahead" },
    });
    expect(
      errorName(() => decodeFrame(frameOf({ op: 1, t: "#info" }, { name: "x".repeat(65) }))),
    ).toBe("InvalidFrame");
    expect(errorName(() => decodeFrame(frameOf({ op: -1 }, { error: "<script>" })))).toBe(
      "InvalidFrame",
    );
    expect(
      errorName(() => decodeFrame(frameOf({ op: -1 }, { error: "X", message: "m".repeat(9_000) }))),
    ).toBe("TooBig");
  });
});
