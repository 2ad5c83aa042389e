import { abortAllDurableObjects, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { iterateRecords } from "../../src/log/records";
import { meterSnapshot, resetMeter } from "../../src/metering/meter";
import { decodeFrame } from "../../src/protocol/frame";
import { readFrameSeq } from "../../src/protocol/seq-rewrite";
import type { IngestEvent } from "../../src/sequence/hot-log";
import { sequencerStub } from "../../src/stubs";
import { appendEvents, commitFrame, recordSeqs } from "./support";

const TEST_DID = "did:plc:testrepo000000000000000";

describe("Sequencer", () => {
  it("assigns contiguous seqs, rewrites only the seq, and accepts a retried batch once", async () => {
    const sequencer = sequencerStub(env);
    const events = [1001, 1002, 1003].map((upstreamSeq) => ({
      host: "retry.test",
      upstreamSeq,
      frame: commitFrame(upstreamSeq),
      did: TEST_DID,
    }));
    const first = await sequencer.appendBatch({ events });
    expect(first.accepted).toBe(3);
    expect(first.lastSeq! - first.firstSeq!).toBe(2);
    expect(first.hostCursors["retry.test"]).toBe(1003);

    const retry = await sequencer.appendBatch({ events });
    expect(retry).toMatchObject({ accepted: 0, duplicates: 3, firstSeq: null });

    const read = await sequencer.readLog(first.firstSeq! - 1, 1_000_000);
    expect(read.kind).toBe("hot");
    if (read.kind !== "hot") return;
    expect(recordSeqs(read.records)).toEqual([first.firstSeq, first.firstSeq! + 1, first.lastSeq]);

    // the stored frame equals the upstream frame except for the seq
    const { iterateRecords } = await import("../../src/log/records");
    const stored = [...iterateRecords(read.records)][0]!;
    expect(readFrameSeq(stored.frame)).toBe(first.firstSeq);
    const upstream = commitFrame(1001);
    expect(stored.frame.byteLength - upstream.byteLength).toBeLessThanOrEqual(8);
  });

  it("keeps per-host cursors and forgets one on reset", async () => {
    const sequencer = sequencerStub(env);
    await sequencer.appendBatch({
      events: [{ host: "reset.test", upstreamSeq: 50, frame: commitFrame(50), did: TEST_DID }],
    });
    expect(await sequencer.getHostCursor("reset.test")).toBe(50);
    await sequencer.resetHostCursor("reset.test");
    expect(await sequencer.getHostCursor("reset.test")).toBeNull();
    const again = await sequencer.appendBatch({
      events: [{ host: "reset.test", upstreamSeq: 1, frame: commitFrame(1), did: TEST_DID }],
    });
    expect(again.accepted).toBe(1);
  });

  it("keeps per-host cursors across restarts, whether their batches are hot or sealed, and forgets them on reset", async () => {
    const host = "restart-cursor.test";
    await sequencerStub(env).appendBatch({
      events: [7, 8, 9].map((upstreamSeq) => ({
        host,
        upstreamSeq,
        frame: commitFrame(upstreamSeq),
        did: TEST_DID,
      })),
    });
    await abortAllDurableObjects();
    expect(await sequencerStub(env).getHostCursor(host)).toBe(9);
    const again = await sequencerStub(env).appendBatch({
      events: [{ host, upstreamSeq: 9, frame: commitFrame(9), did: TEST_DID }],
    });
    expect(again.duplicates).toBe(1);
    await sequencerStub(env).sealNow();
    await abortAllDurableObjects();
    expect(await sequencerStub(env).getHostCursor(host)).toBe(9);
    await sequencerStub(env).appendBatch({
      events: [{ host, upstreamSeq: 10, frame: commitFrame(10), did: TEST_DID }],
    });
    await sequencerStub(env).resetHostCursor(host);
    await abortAllDurableObjects();
    expect(await sequencerStub(env).getHostCursor(host)).toBeNull();
  });

  it("seals the hot log into R2 segments that hold exactly the same records", async () => {
    const sequencer = sequencerStub(env);
    await appendEvents(300);
    const before = await sequencer.getLogState();
    await sequencer.sealNow();
    const after = await sequencer.getLogState();
    // 300 frames of ~1.5 KB over 200 KB segments: appends sealed some already, sealNow the rest
    expect(after.segments).toBeGreaterThanOrEqual(2);
    expect(after.hotRows).toBe(0);
    expect(after.headSeq).toBe(before.headSeq);
    const listed = await env.EVENT_LOG.list({ prefix: "segments/" });
    expect(listed.objects.length).toBe(after.segments);
    for (const o of listed.objects) expect(o.key).toMatch(/^segments\/\d{20}$/);
  });

  it("commits the batches that arrive within the group-commit window as one row, each with its own result", async () => {
    const sequencer = sequencerStub(env);
    const host = "group.test";
    const resetHost = "group-reset.test";
    const down = "did:plc:groupdown0000000000000000";
    const event = (h: string, upstreamSeq: number, did = TEST_DID): IngestEvent => ({
      host: h,
      upstreamSeq,
      frame: commitFrame(upstreamSeq, did),
      did,
    });
    await sequencer.appendBatch({ events: [event(resetHost, 1)] });
    await sequencer.resetHostCursor(resetHost);
    // the takedown is a commit of its own: the batches below arrive within the window after it
    const takedown = await sequencer.setTakedown(down, true, commitFrame(1, down));
    const head = takedown.seq as number;
    await new Promise((r) => setTimeout(r, 10)); // the meter sums rows a microtask later
    resetMeter();
    // sent 15 ms apart, so they arrive in this order (calls sent at once may arrive in any
    // order here, which CI showed), all within the window after the takedown's commit
    const batches = [
      { events: [event(host, 1), event(host, 2), event(host, 3)] },
      // 3 was sequenced by the batch before, in the same commit
      { events: [event(host, 3), event(host, 4), event(host, 5)] },
      // read before the reset
      { events: [event(resetHost, 2)], hostEpochs: { [resetHost]: 0 } },
      { events: [event(host, 6, down), event(host, 7)] },
    ];
    const pending = [];
    for (const batch of batches) {
      pending.push(sequencer.appendBatch(batch));
      await new Promise((r) => setTimeout(r, 15));
    }
    const [a, b, c, d] = await Promise.all(pending);
    await new Promise((r) => setTimeout(r, 10));
    const units = meterSnapshot();
    expect(units.calls["Sequencer.appendBatch"]).toBe(4);
    const hotRows = Object.entries(units.statements)
      .filter(([k]) => /^Sequencer: (INSERT INTO|UPDATE) hot_log /.test(k))
      .reduce((n, [, v]) => n + v.rowsWritten, 0);
    // one row (the four arrive within the window after the takedown's commit); two if a slow
    // machine delays them past it: the first is then committed alone, the rest together
    expect(hotRows).toBeGreaterThanOrEqual(1);
    expect(hotRows).toBeLessThanOrEqual(2);

    expect(a).toEqual({
      accepted: 3,
      duplicates: 0,
      firstSeq: head + 1,
      lastSeq: head + 3,
      hostCursors: { [host]: 3 },
      dropped: [],
    });
    expect(b).toEqual({
      accepted: 2,
      duplicates: 1,
      firstSeq: head + 4,
      lastSeq: head + 5,
      hostCursors: { [host]: 5 },
      dropped: [],
    });
    expect(c).toEqual({
      accepted: 0,
      duplicates: 0,
      firstSeq: null,
      lastSeq: null,
      hostCursors: {},
      dropped: [{ host: resetHost, upstreamSeq: 2, reason: "CursorReset" }],
    });
    expect(d).toEqual({
      accepted: 1,
      duplicates: 0,
      firstSeq: head + 6,
      lastSeq: head + 6,
      hostCursors: { [host]: 7 },
      dropped: [{ host, upstreamSeq: 6, reason: "RepoTakendown" }],
    });

    // seqs in arrival order, and the same after a restart
    const upstreamOrder = async () => {
      const read = await sequencerStub(env).readLog(head, 1_000_000);
      if (read.kind !== "hot") throw new Error(`expected hot records, got ${read.kind}`);
      return [...iterateRecords(read.records)].map((r) => {
        const frame = decodeFrame(r.frame);
        if (frame.kind !== "commit") throw new Error(frame.kind);
        return [r.seq, frame.body.blocks[0]];
      });
    };
    const expected = [1, 2, 3, 4, 5, 7].map((upstream, i) => [head + 1 + i, upstream]);
    expect(await upstreamOrder()).toEqual(expected);
    await abortAllDurableObjects();
    expect(await upstreamOrder()).toEqual(expected);
    expect(await sequencerStub(env).getHostPosition(host)).toEqual({ cursor: 7, epoch: 0 });
    expect(await sequencerStub(env).getHostPosition(resetHost)).toEqual({ cursor: null, epoch: 1 });
  });

  it("commits the batches waiting for their group before a takedown, and judges later ones by it", async () => {
    const sequencer = sequencerStub(env);
    const did = "did:plc:groupthentakedown00000000";
    const host = "group-takedown.test";
    const event = (upstreamSeq: number) => ({
      host,
      upstreamSeq,
      frame: commitFrame(upstreamSeq, did),
      did,
    });
    await sequencer.appendBatch({ events: [event(1)] });
    // within the group-commit window after that commit: this batch waits for the next commit
    const waiting = sequencer.appendBatch({ events: [event(2)] });
    await new Promise((r) => setTimeout(r, 20));
    const takedown = await sequencer.setTakedown(did, true, commitFrame(1, did));
    const before = await waiting;
    const after = await sequencer.appendBatch({ events: [event(3)] });
    expect(before).toMatchObject({ accepted: 1, dropped: [] });
    expect(takedown.seq).toBe((before.lastSeq as number) + 1);
    expect(after).toMatchObject({
      accepted: 0,
      dropped: [{ host, upstreamSeq: 3, reason: "RepoTakendown" }],
    });
  });
});
