import { describe, expect, it } from "vitest";
import { type ReplayEvent, ReplayVerificationError, replay } from "../../src/client";
import { encodeRecords } from "../../src/log/records";
import { encodeSegment } from "../../src/log/segment";
import { parseDidDocument } from "../../src/protocol/did-doc";
import type { PublicKey } from "../../src/protocol/did-key";
import { loadCapturedFrames, loadDidDocuments } from "../fixtures/captured";

// `verify: true` with the relay's protocol core, on frames captured from the reference PDS
// (test/fixtures): real signed commits, served as one segment by an in-memory `fetch`.

const captured = loadCapturedFrames().filter((f) => f.file === "pds-k256" && f.seq !== null);
const records = captured.map((f) => ({ seq: f.seq as number, frame: f.bytes }));
const segment = encodeSegment(encodeRecords(records)).bytes;
const first = records[0]!.seq;
const last = records.at(-1)!.seq;

const keys = new Map<string, PublicKey | null>();
for (const [did, doc] of Object.entries(loadDidDocuments()))
  keys.set(did, parseDidDocument(doc).signingKey);

async function segmentFetch(url: string): Promise<Response> {
  if (url.includes("/segments?")) {
    const after = Number(/after=(\d+)/.exec(url)?.[1]);
    const listed =
      after < last
        ? [
            {
              firstSeq: first,
              lastSeq: last,
              firstTime: "2026-11-24T21:28:00.000Z",
              lastTime: "2026-11-24T21:28:31.000Z",
              bytes: segment.byteLength,
              url: "/segments/1",
            },
          ]
        : [];
    return Response.json({ segments: listed, sealedThrough: last, cursor: last });
  }
  return new Response(segment);
}

async function verifyAll(
  resolveKey: (did: string) => Promise<PublicKey | null>,
): Promise<ReplayEvent[]> {
  const out: ReplayEvent[] = [];
  for await (const event of replay({
    service: "http://relay.test",
    cursor: 0,
    fetch: segmentFetch,
    historyOnly: true,
    verify: { resolveKey },
  }))
    out.push(event);
  return out;
}

describe("verify", () => {
  it("accepts every event the reference PDS signed", async () => {
    const events = await verifyAll(async (did) => keys.get(did) ?? null);
    expect(events.map((e) => e.seq)).toEqual(records.map((r) => r.seq));
    expect(events.filter((e) => e.type === "#commit").length).toBeGreaterThan(20);
  });

  it("stops at the first commit whose signature is not the account's key", async () => {
    const dids = [...keys.keys()];
    // every account's key swapped with another's
    const wrong = async (did: string) =>
      keys.get(dids[(dids.indexOf(did) + 1) % dids.length]!) ?? null;
    const error = await verifyAll(wrong).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ReplayVerificationError);
    const firstCommit = captured.find((f) => f.kind === "commit")!;
    expect(error).toMatchObject({ seq: firstCommit.seq });
    expect(String(error)).toMatch(/signature/);
  });

  it("stops at a commit whose blocks were altered", async () => {
    const firstCommit = captured.find((f) => f.kind === "commit")!;
    const index = records.findIndex((r) => r.seq === firstCommit.seq);
    const tampered = records.map((r, i) => {
      if (i !== index) return r;
      const frame = r.frame.slice();
      // a byte near the end: inside `blocks` (the CAR), before the short trailing fields
      frame[frame.byteLength - 200] = (frame[frame.byteLength - 200]! + 1) % 256;
      return { seq: r.seq, frame };
    });
    const bad = encodeSegment(encodeRecords(tampered)).bytes;
    const error = await (async () => {
      for await (const _ of replay({
        service: "http://relay.test",
        cursor: 0,
        historyOnly: true,
        fetch: async (url: string) => (url.includes("?") ? segmentFetch(url) : new Response(bad)),
        verify: { resolveKey: async (did) => keys.get(did) ?? null },
      })) {
        // verified events
      }
    })().catch((err: unknown) => err);
    expect(error).toMatchObject({ seq: firstCommit.seq });
  });
});
