import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ConnectionWatch,
  type PdsNetwork,
  startPdsNetwork,
  watchRelayConnections,
} from "../support/pds-network";
import { type FaultOutcome, outcomeIsClean, runFaultIteration } from "./fault-run";
import { SCENARIOS, SHORT_SCENARIOS } from "./scenarios";

// The fault-injection suite (docs/testing.md): real reference PDS hosts, the relay under
// `wrangler dev`, kill -9 of its whole process group at seeded moments of each scenario, writes
// going on while it is down, and after every restart the relay's log from cursor 0 compared
// with what each host sequenced.
//
//   FAULT_ITERATIONS  kill points (default: one per short scenario, the variant in `npm test`)
//   FAULT_SEED        base seed (printed); iteration i uses FAULT_SEED + i
//   FAULT_SCENARIO    only this scenario (comma-separated names allowed)

const names = process.env.FAULT_SCENARIO?.split(",").map((s) => s.trim());
const iterationsWanted = process.env.FAULT_ITERATIONS
  ? Number(process.env.FAULT_ITERATIONS)
  : undefined;
const scenarios = SCENARIOS.filter((s) =>
  names
    ? names.includes(s.name)
    : iterationsWanted !== undefined || SHORT_SCENARIOS.includes(s.name),
);
if (scenarios.length === 0) throw new Error(`no scenario named ${process.env.FAULT_SCENARIO}`);
const iterations = iterationsWanted ?? scenarios.length;
const baseSeed = process.env.FAULT_SEED
  ? Number(process.env.FAULT_SEED)
  : Math.floor(Math.random() * 1_000_000_000);
console.log(
  `fault suite: ${iterations} kill points over ${scenarios.map((s) => s.name).join(", ")}; FAULT_SEED=${baseSeed}`,
);

let network: PdsNetwork;
const watches = new Map<string, ConnectionWatch>();
const outcomes: FaultOutcome[] = [];

beforeAll(async () => {
  network = await startPdsNetwork({ pdsCount: 2, accountsPerPds: 3 });
  for (const host of network.hosts) watches.set(host.hostname, watchRelayConnections(host));
}, 180_000);

afterAll(async () => {
  for (const watch of watches.values()) watch.close();
  await network?.close();
  const failed = outcomes.filter((o) => !outcomeIsClean(o));
  console.log(
    `fault suite: ${outcomes.length - failed.length}/${outcomes.length} kill points clean (FAULT_SEED=${baseSeed})`,
  );
  for (const o of failed)
    console.log(
      `  FAILED ${o.scenario} seed ${o.seed}: ${JSON.stringify({ missing: o.comparison.missing, duplicated: o.comparison.duplicated.length, outOfOrder: o.comparison.outOfOrder.length, seqGaps: o.comparison.seqGaps.length, continuityFlags: o.continuityFlags.length })}`,
    );
}, 60_000);

describe("kill -9 of the relay at seeded moments", () => {
  for (let i = 0; i < iterations; i++) {
    const scenario = scenarios[i % scenarios.length] as (typeof scenarios)[number];
    const seed = baseSeed + i;
    it(`${scenario.name}, seed ${seed}`, async () => {
      const outcome = await runFaultIteration({
        network,
        watches,
        scenario,
        seed,
        log: (line) => console.log(line),
      });
      outcomes.push(outcome);
      console.log(
        `${scenario.name} seed ${seed}: ${outcomeIsClean(outcome) ? "clean" : "NOT CLEAN"}, ${outcome.comparison.relayEvents} relayed of ${outcome.comparison.owedEvents} owed, log ${JSON.stringify(outcome.logState)}`,
      );
      const reproduce = `FAULT_SCENARIO=${scenario.name} FAULT_SEED=${seed} FAULT_ITERATIONS=1 npm run test:faults`;
      const report = {
        killDelayMs: outcome.killDelayMs,
        downMs: outcome.downMs,
        headAtKill: outcome.headAtKill,
        floors: outcome.floors,
        owedEvents: outcome.comparison.owedEvents,
        relayEvents: outcome.comparison.relayEvents,
        reconnectedWith: outcome.reconnectedWith,
        dropLines: outcome.dropLines,
        logState: outcome.logState,
      };
      expect(
        {
          missing: outcome.comparison.missing,
          duplicated: outcome.comparison.duplicated.slice(0, 5),
          outOfOrder: outcome.comparison.outOfOrder.slice(0, 5),
          seqGaps: outcome.comparison.seqGaps.slice(0, 5),
          unknown: outcome.comparison.unknown,
          continuityFlags: outcome.continuityFlags,
          consumers: outcome.consumers.filter(
            (c) => c.missingSeqs !== "" || c.duplicatedSeqs !== "" || c.mismatched.length > 0,
          ),
        },
        `${scenario.name} seed ${seed} (${JSON.stringify(report)}); reproduce: ${reproduce}`,
      ).toEqual({
        missing: [],
        duplicated: [],
        outOfOrder: [],
        seqGaps: [],
        unknown: [],
        continuityFlags: [],
        consumers: [],
      });
    }, 240_000);
  }
});
