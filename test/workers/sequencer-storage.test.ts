import { abortAllDurableObjects, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { iterateRecords, recordsAfter } from "../../src/log/records";
import { decodeTrailer, segmentKey, TRAILER_BYTES } from "../../src/log/segment";
import { decodeFrame } from "../../src/protocol/frame";
import {
  appendEvents,
  hotLogBytes,
  type IngestEvent,
  type LogRead,
  loadHeadSeq,
  readLog,
  retainedFloor,
} from "../../src/sequence/hot-log";
import { sealSegment } from "../../src/sequence/seal";
import { sequencerStub } from "../../src/stubs";
import { commitFrame } from "./support";

const DID = "did:plc:storagetest0000000000000";

type Read = (afterSeq: number) => Promise<LogRead>;

/** The records of an R2 segment after `afterSeq`, read whole (tests only). */
async function segmentRecordsAfter(key: string, afterSeq: number): Promise<Uint8Array> {
  const object = await env.EVENT_LOG.get(key);
  if (!object) throw new Error(`segment ${key} is missing`);
  const bytes = new Uint8Array(await object.arrayBuffer());
  const trailer = decodeTrailer(bytes.subarray(bytes.byteLength - TRAILER_BYTES));
  return recordsAfter(bytes.subarray(0, trailer.indexOffset), afterSeq);
}

/**
 * Reads the log from `cursor` to its head the way a Fanout does: segments from R2, hot records
 * from the Sequencer, and on `trimmed` from where it says. Returns the frames by seq, and
 * whether the reader was told its cursor was outdated.
 */
async function replay(
  read: Read,
  cursor: number,
): Promise<{ frames: Map<number, Uint8Array>; outdated: boolean }> {
  const frames = new Map<number, Uint8Array>();
  let outdated = false;
  let after = cursor;
  for (;;) {
    const next = await read(after);
    if (next.kind === "caughtUp") return { frames, outdated };
    let records: Uint8Array;
    switch (next.kind) {
      case "trimmed":
        outdated = true;
        after = next.trimmedThrough;
        continue;
      case "segment":
        records = await segmentRecordsAfter(next.key, after);
        break;
      case "hot":
        records = next.records;
        break;
    }
    for (const record of iterateRecords(records)) {
      expect(record.seq).toBeGreaterThan(after);
      frames.set(record.seq, record.frame.slice());
      after = record.seq;
    }
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe("replay when the log starts at a high FIRST_SEQ", () => {
  it("cursor 0 and cursors below FIRST_SEQ read from the oldest event, sealed ones included, as outdated", async () => {
    // FIRST_SEQ is one value for the whole test pool, so this drives the Sequencer's own
    // functions over a Sequencer object's real SQLite and R2, as if FIRST_SEQ were 1,000,000
    const firstSeq = 1_000_000;
    const stub = env.SEQUENCER.get(env.SEQUENCER.idFromName("first-seq-test"));
    await runInDurableObject(stub, async (_instance, state) => {
      const sql = state.storage.sql;
      let headSeq = loadHeadSeq(sql, firstSeq);
      expect(headSeq).toBe(firstSeq - 1);
      let upstream = 0;
      let lastTimeUs = 0;
      const appendBatch = (count: number) => {
        const events: IngestEvent[] = range(1, count).map(() => {
          upstream++;
          return {
            host: "pds.test",
            upstreamSeq: upstream,
            frame: commitFrame(upstream),
            did: DID,
          };
        });
        const appended = appendEvents(
          state.storage,
          events,
          {
            headSeq,
            hostCursors: new Map(),
            hostEpochs: new Map(),
            takedowns: new Set(),
            lastTimeUs,
          },
          { nowMs: Date.now() },
        );
        headSeq = appended.headSeq;
        lastTimeUs = appended.lastTimeUs;
      };
      // two sealed segments, then a hot tail (as in the issue: 40 events, 15 hot)
      for (const count of [15, 10]) {
        appendBatch(count);
        const sealed = await sealSegment({
          storage: state.storage,
          bucket: env.EVENT_LOG,
          maxBytes: 10_000_000,
          sealOlderThanMs: Number.POSITIVE_INFINITY,
        });
        expect(sealed).toMatchObject({ sealed: true });
      }
      appendBatch(15);
      expect(headSeq).toBe(firstSeq + 39);

      const read: Read = async (after) =>
        readLog(sql, after, 1_000_000, headSeq, firstSeq, segmentKey);
      // what getLogState reports as trimmedThrough, which the Fanout compares cursors with
      expect(retainedFloor(sql, firstSeq)).toBe(firstSeq - 1);
      for (const cursor of [0, 500, firstSeq - 2]) {
        const { frames, outdated } = await replay(read, cursor);
        expect([...frames.keys()]).toEqual(range(firstSeq, firstSeq + 39));
        expect(outdated).toBe(true);
      }
      // the last seq before the log starts is a cursor like any other: everything, not outdated
      const fromStart = await replay(read, firstSeq - 1);
      expect([...fromStart.frames.keys()]).toEqual(range(firstSeq, firstSeq + 39));
      expect(fromStart.outdated).toBe(false);
    });
  });
});

describe("events of any storable size", () => {
  const sequencer = () => sequencerStub(env);
  const read: Read = (after) => sequencer().readLog(after, 1_000_000);

  it("stores a 4.5 MB frame over several rows, replays it from SQLite, after a restart, and from R2", async () => {
    const big = commitFrame(2, DID, 4_500_000);
    expect(big.byteLength).toBeGreaterThan(4_500_000);
    const events = [1, 2, 3].map((upstreamSeq) => ({
      host: "big.test",
      upstreamSeq,
      frame: upstreamSeq === 2 ? big : commitFrame(upstreamSeq, DID),
      did: DID,
    }));
    const result = await sequencer().appendBatch({ events });
    expect(result).toMatchObject({ accepted: 3, dropped: [] });
    const firstSeq = result.firstSeq as number;

    const expectStored = (frames: Map<number, Uint8Array>) => {
      const stored = frames.get(firstSeq + 1);
      expect(stored?.byteLength).toBe(big.byteLength);
      const frame = decodeFrame(stored as Uint8Array);
      if (frame.kind !== "commit") throw new Error(`expected a commit, got ${frame.kind}`);
      expect(frame.body.seq).toBe(firstSeq + 1);
      // (vitest's deep equality walks a 4.5 MB array element by element: compare as a whole)
      expect(frame.body.blocks.byteLength).toBe(4_500_000);
      expect(frame.body.blocks.every((b) => b === 2)).toBe(true);
      expect([...frames.keys()]).toEqual([firstSeq, firstSeq + 1, firstSeq + 2]);
    };
    // hot (SEGMENT_MAX_BYTES is 200 KB in tests: wait for the seal the append started)
    await sequencer().sealNow();
    expectStored((await replay(read, firstSeq - 1)).frames);
    await abortAllDurableObjects();
    expectStored((await replay(read, firstSeq - 1)).frames);
    const state = await sequencer().getLogState();
    expect(state.hotRows).toBe(0);
    // and a reader that starts inside the segment, just before the big one
    const fromMiddle = await replay(read, firstSeq);
    expect(fromMiddle.frames.get(firstSeq + 1)?.byteLength).toBe(big.byteLength);
  });

  it("replays a large frame that is still hot, with the rows around it, from any cursor", async () => {
    // on an object of its own, driving its functions, so that no seal moves the rows to R2
    const stub = env.SEQUENCER.get(env.SEQUENCER.idFromName("hot-big-test"));
    await runInDurableObject(stub, async (_instance, state) => {
      const sql = state.storage.sql;
      const sizes = [100, 2_500_000, 100, 4_000_000, 100];
      const events: IngestEvent[] = sizes.map((size, i) => ({
        host: "hot-big.test",
        upstreamSeq: i + 1,
        frame: commitFrame(i + 1, DID, size),
        did: DID,
      }));
      const { headSeq, result } = appendEvents(
        state.storage,
        events,
        {
          headSeq: 0,
          hostCursors: new Map(),
          hostEpochs: new Map(),
          takedowns: new Set(),
          lastTimeUs: 0,
        },
        { nowMs: Date.now() },
      );
      expect(result).toMatchObject({ accepted: 5, dropped: [] });
      // 2.5 MB is one overflow part, 4 MB two: every byte is counted for sealing
      // (seqs 1..5 encode like upstream seqs 1..5: the frames keep their sizes)
      const stored = events.reduce((n, e) => n + e.frame.byteLength + 12, 0);
      expect(hotLogBytes(sql)).toBe(stored);
      const read: Read = async (after) => readLog(sql, after, 1_000_000, headSeq, 1, segmentKey);
      for (const cursor of [0, 1, 2, 3]) {
        const { frames } = await replay(read, cursor);
        expect([...frames.keys()]).toEqual(range(cursor + 1, 5));
        for (const [seq, frame] of frames)
          expect(frame.byteLength).toBe(events[seq - 1]?.frame.byteLength);
      }
    });
  });

  it("stores the other events of a batch when one can never be stored, and never fails the batch", async () => {
    const tooBig = commitFrame(2, DID, 5_100_000);
    const notAFrame = new Uint8Array([0xa0, 0x01, 0x02]);
    const events = [1, 2, 3, 4].map((upstreamSeq) => ({
      host: "toobig.test",
      upstreamSeq,
      frame: upstreamSeq === 2 ? tooBig : upstreamSeq === 3 ? notAFrame : commitFrame(upstreamSeq),
      did: DID,
    }));
    const result = await sequencer().appendBatch({ events });
    expect(result).toMatchObject({
      accepted: 2,
      dropped: [
        { host: "toobig.test", upstreamSeq: 2, reason: "TooBigToStore" },
        { host: "toobig.test", upstreamSeq: 3, reason: "InvalidEvent:InvalidFrame" },
      ],
      hostCursors: { "toobig.test": 4 },
    });
    expect(result.lastSeq).toBe((result.firstSeq as number) + 1);
    const { frames } = await replay(read, (result.firstSeq as number) - 1);
    expect([...frames.keys()]).toEqual([result.firstSeq, result.lastSeq]);
    // the refused ones count as sequenced: offered again, they are duplicates
    const again = await sequencer().appendBatch({ events });
    expect(again).toMatchObject({ accepted: 0, duplicates: 4, dropped: [] });
  });
});

describe("sealed rows kept for reuse", () => {
  it("are never read as hot: replay, log state, cursors and a reset see only unsealed seqs, across a restart", async () => {
    const sequencer = () => sequencerStub(env);
    const read: Read = (after) => sequencer().readLog(after, 1_000_000);
    const batch = (host: string, upstreamSeqs: number[]) =>
      sequencer().appendBatch({
        events: upstreamSeqs.map((upstreamSeq) => ({
          host,
          upstreamSeq,
          frame: commitFrame(upstreamSeq, DID),
          did: DID,
        })),
      });
    await sequencer().sealNow();
    const start = (await sequencer().getLogState()).headSeq;
    // three commits (one after another: each its own row), sealed: three stale rows
    await batch("stale-a.test", [1, 2]);
    await batch("stale-a.test", [3]);
    await batch("stale-b.test", [10]);
    expect(await sequencer().sealNow()).toMatchObject({ sealed: true, lastSeq: start + 4 });
    // one commit takes a stale row over; two stay stale, holding sealed seqs and old cursors
    const hot = await batch("stale-c.test", [7, 8]);
    expect(hot).toMatchObject({ firstSeq: start + 5, lastSeq: start + 6 });
    await sequencer().resetHostCursor("stale-a.test");

    const storedRows = async () =>
      runInDurableObject(sequencerStub(env), async (_i, state) => {
        return state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM hot_log").one().n;
      });
    const check = async () => {
      expect(await storedRows()).toBe(3);
      const state = await sequencer().getLogState();
      expect(state).toMatchObject({ headSeq: start + 6, hotRows: 1 });
      expect(state.hotBytes).toBeGreaterThan(0);
      // two records of ~1.7 KB; with the four stale ones it would be three times as much
      expect(state.hotBytes).toBeLessThan(3 * 1_700);
      // from the last sealed seq: exactly the unsealed ones, from SQLite
      const next = await read(start + 4);
      expect(next.kind).toBe("hot");
      if (next.kind === "hot")
        expect([...iterateRecords(next.records)].map((r) => r.seq)).toEqual([start + 5, start + 6]);
      // from before them: the segment, then the hot ones, each seq once
      const { frames } = await replay(read, start);
      expect([...frames.keys()]).toEqual(range(start + 1, start + 6));
      expect(await sequencer().getHostCursor("stale-a.test")).toBeNull();
      expect(await sequencer().getHostCursor("stale-b.test")).toBe(10);
      expect(await sequencer().getHostCursor("stale-c.test")).toBe(8);
    };
    await check();
    await abortAllDurableObjects();
    await check();
    // a seal after the restart takes only the unsealed row, and the log goes on from the head
    expect(await sequencer().sealNow()).toMatchObject({
      sealed: true,
      firstSeq: start + 5,
      lastSeq: start + 6,
    });
    expect(await batch("stale-a.test", [1])).toMatchObject({ accepted: 1, firstSeq: start + 7 });
    expect(await storedRows()).toBe(3);
  });
});
