import { abortAllDurableObjects, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { readFrameSeq } from "../../src/protocol/seq-rewrite";
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
});
