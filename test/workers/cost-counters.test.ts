import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { HostReport } from "../../src/ingest/host-record";
import { meterSnapshot, resetMeter } from "../../src/metering/meter";
import { hostDirectoryStub, sequencerStub } from "../../src/stubs";
import { crawl, ingester, newHost, push, sequencedThrough } from "./ingest-support";
import { appendEvents } from "./support";

// Keeps the billed-unit counters honest (src/metering/meter.ts, `npm run cost`, docs/cost.md):
// a known workload gives known row and request counts, so a change that adds a row or a request
// per event fails here.

type Statements = Record<string, { execs: number; rowsWritten: number }>;
const INSERT = "Sequencer: INSERT INTO hot_log ";
const REUSE = "Sequencer: UPDATE hot_log SET first_seq = ?";

/** Executions and rows written by the statements that start with `prefix`. */
function byPrefix(statements: Statements, prefix: string): { execs: number; rowsWritten: number } {
  const total = { execs: 0, rowsWritten: 0 };
  for (const [key, counted] of Object.entries(statements)) {
    if (!key.startsWith(prefix)) continue;
    total.execs += counted.execs;
    total.rowsWritten += counted.rowsWritten;
  }
  return total;
}

/** Rows written into the hot log by appends (a new row, or a sealed one taken over). */
function hotLogRows(statements: Statements): number {
  return byPrefix(statements, INSERT).rowsWritten + byPrefix(statements, REUSE).rowsWritten;
}

async function settled(): Promise<void> {
  // the meter sums a statement's rows in the microtask after it ran
  await new Promise((r) => setTimeout(r, 10));
}

describe("cost counters", () => {
  it("the event log writes one row per group commit, reuses sealed rows, and one request per batch", async () => {
    await sequencerStub(env).getLogState();
    resetMeter();
    const batches = 20;
    // concurrent, as the ingester shards send them: the first is committed at once, the other
    // 19 arrive within SEQUENCER_GROUP_COMMIT_MS (100 ms) of it and share the next commit
    // (a host each: concurrent calls on separate stubs may arrive in any order)
    const appendAll = () =>
      Promise.all(
        Array.from({ length: batches }, (_, i) => appendEvents(10, `cost${i}.test`, 500)),
      );
    const results = await appendAll();
    await settled();
    const appended = meterSnapshot();
    expect(results.every((r) => r.accepted === 10)).toBe(true);
    expect(appended.calls["Sequencer.appendBatch"]).toBe(batches);
    expect(appended.objects.Sequencer!.requests).toBe(batches);
    // two hot-log rows for 20 batches (a row per batch would be 20)
    expect(hotLogRows(appended.statements)).toBe(2);
    // and little else: an alarm firing meanwhile may add a few
    expect(appended.objects.Sequencer!.rowsWritten).toBeLessThanOrEqual(2 + 4);

    resetMeter();
    await sequencerStub(env).sealNow();
    await settled();
    const sealed = meterSnapshot();
    // sealed rows are not deleted (a delete is billed per row): the seal writes its segment
    // row, a host cursor per host (row + primary-key index) and its bookkeeping
    expect(hotLogRows(sealed.statements)).toBe(0);
    expect(Object.keys(sealed.statements).filter((k) => k.includes("hot_log "))).toEqual([]);
    expect(sealed.objects.Sequencer!.rowsWritten).toBeLessThanOrEqual(7 + 2 * batches);
    expect(sealed.r2.classA).toBe(1);
    expect(sealed.r2.bytesPut).toBeGreaterThan(batches * 10 * 500);

    // the next commits take the sealed rows over: one row written each, no insert
    resetMeter();
    await appendAll();
    await settled();
    const reused = meterSnapshot();
    expect(byPrefix(reused.statements, REUSE)).toEqual({ execs: 2, rowsWritten: 2 });
    expect(byPrefix(reused.statements, INSERT)).toEqual({ execs: 0, rowsWritten: 0 });
  });

  it("an ingester writes account state per report, not per event", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    await sequencedThrough(host.hostname, (await push(host, 1)).at(-1)!);
    await ingester(host.hostname).publishState();
    await settled();
    resetMeter();
    const events = 40;
    const seqs = await push(host, events);
    await sequencedThrough(host.hostname, seqs.at(-1)!);
    // the report that persists the account state and the host's cursor, as every
    // HOST_REPORT_INTERVAL_SECONDS
    await ingester(host.hostname).publishState();
    await settled();
    const units = meterSnapshot();
    // one account: its state row and the host record, once (WITHOUT ROWID tables, one row per
    // write); a row per event would be >= 40
    expect(units.objects.HostIngester!.rowsWritten).toBeGreaterThanOrEqual(2);
    expect(units.objects.HostIngester!.rowsWritten).toBeLessThanOrEqual(5);
    expect(units.objects.RepoIndex!.rowsWritten).toBeLessThanOrEqual(2);
    expect(units.objects.HostDirectory!.rowsWritten).toBeLessThanOrEqual(1);
    // the batches reach the Sequencer as a few appends, not one per event
    expect(units.calls["Sequencer.appendBatch"]).toBeLessThan(events / 2);
  });

  it("a host report that changes nothing an operator reads writes no row", async () => {
    const directory = hostDirectoryStub(env);
    const report: HostReport = {
      hostname: "quiet.cost.test",
      status: "active",
      cursor: 10,
      accountCount: 3,
      lastError: null,
      lastAttemptMs: 1_000,
      connectedSinceMs: 1_000,
      lastEventMs: 2_000,
      counters: { accepted: 10, dropped: {} },
      ingester: "shard:0",
    };
    await directory.reportHosts([report]);
    const first = (await directory.getHost(report.hostname))!.reportedMs!;
    await new Promise((r) => setTimeout(r, 5));
    resetMeter();
    for (let i = 0; i < 5; i++) await directory.reportHosts([report]);
    await settled();
    expect(meterSnapshot().objects.HostDirectory!.rowsWritten).toBe(0);
    // liveness still moves, in memory
    expect((await directory.getHost(report.hostname))!.reportedMs!).toBeGreaterThan(first);

    resetMeter();
    await directory.reportHosts([{ ...report, cursor: 11, lastEventMs: 3_000 }]);
    await settled();
    expect(meterSnapshot().objects.HostDirectory!.rowsWritten).toBe(1);
    const entry = (await directory.getHost(report.hostname))!;
    expect(entry.cursor).toBe(11);
    expect(entry.lastEventMs).toBe(3_000);
  });
});
