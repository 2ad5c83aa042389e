import { env, runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import { meterSnapshot, resetMeter } from "../../src/metering/meter";
import { PackedStore } from "../../src/storage/packed-store";

// Account state at network scale (`npm run cost`, docs/cost.md): the packed store the ingesters
// and the RepoIndex keep it in (src/storage/packed-store.ts), with its default settings, fed
// reports the way an ingester feeds it: one delta per report window, then compactions and
// merges when due. Half of each window's accounts were seen before, half are new, so the store
// keeps growing and merges climb levels. Prints `COST-PACKED {json}` with the rows written per
// account update at each size; scripts/cost-model.ts extrapolates them over levels.

const ACCOUNTS_PER_REPORT = 2_000;
const REPORTS = 200;
const CHECKPOINTS = [50, 100, 200];

function didOf(i: number): string {
  return `did:plc:${i.toString(32).padStart(24, "a")}`;
}

function stateOf(i: number, report: number) {
  return {
    host: `pds${i % 97}.example.com`,
    rev: `3l${report.toString(32).padStart(11, "2")}`,
    head: `bafyreig${(i * 7919 + report).toString(32).padStart(51, "a")}`,
    data: `bafyreid${(i * 104729 + report).toString(32).padStart(51, "b")}`,
    active: true,
    status: null,
    flag: null,
  };
}

it("measures rows written per account update at growing sizes", { timeout: 600_000 }, async () => {
  const stub = env.REPO_INDEX.get(env.REPO_INDEX.idFromName("cost:packed-scale"));
  const points = await runInDurableObject(stub, async (_instance, state) => {
    const store = new PackedStore<ReturnType<typeof stateOf>>(state.storage, "scale");
    resetMeter();
    const out: { updates: number; keys: number; rowsWritten: number; levels: number }[] = [];
    let next = 0;
    let updates = 0;
    for (let report = 1; report <= REPORTS; report++) {
      const entries: [string, ReturnType<typeof stateOf>][] = [];
      for (let j = 0; j < ACCOUNTS_PER_REPORT; j++) {
        // half seen before (spread over everything stored), half new
        const i = j % 2 === 0 || next === 0 ? next++ : (j * 2_654_435_761) % next;
        entries.push([didOf(i), stateOf(i, report)]);
      }
      state.storage.transactionSync(() => store.writeDelta(entries));
      store.compactIfDue();
      updates += entries.length;
      if (CHECKPOINTS.includes(report)) {
        await new Promise((r) => setTimeout(r, 10));
        let rows = 0;
        for (const [statement, counted] of Object.entries(meterSnapshot().statements))
          if (statement.includes(" scale_")) rows += counted.rowsWritten;
        const levels = new Set(store.stats().runs.map((r) => r.level)).size;
        out.push({ updates, keys: next, rowsWritten: rows, levels });
      }
    }
    return out;
  });
  expect(points.length).toBe(CHECKPOINTS.length);
  console.log(`COST-PACKED ${JSON.stringify({ accountsPerReport: ACCOUNTS_PER_REPORT, points })}`);
});
