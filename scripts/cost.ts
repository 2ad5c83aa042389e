import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import {
  coefficients,
  type Load,
  type Measured,
  packedRowsPerUpdate,
  price,
  type Settings,
} from "./cost-model";

// `npm run cost`: runs the cost workload in workerd (vitest project `cost`, test/cost), takes the
// billed units the relay's own meter counted, and prices them for the loads of issue 14 with
// Cloudflare's published prices (scripts/cost-prices.ts). `npm run cost -- --units <file>`
// prices a saved measurement instead of running the workload; `--save <file>` saves it.

function measure(): Measured {
  const at = process.argv.indexOf("--units");
  if (at > 0) return JSON.parse(readFileSync(process.argv[at + 1]!, "utf8")) as Measured;
  const run = spawnSync("npx", ["vitest", "run", "--project", "cost"], {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  const lines = run.stdout.split("\n");
  const line = lines.find((l) => l.includes("COST-UNITS "));
  const packed = lines.find((l) => l.includes("COST-PACKED "));
  if (run.status !== 0 || !line || !packed) {
    process.stderr.write(run.stdout.slice(-4000) + run.stderr.slice(-4000));
    throw new Error("the cost workload failed (npx vitest run --project cost)");
  }
  const measured = JSON.parse(line.slice(line.indexOf("COST-UNITS ") + 11)) as Measured;
  measured.packed = JSON.parse(packed.slice(packed.indexOf("COST-PACKED ") + 12));
  return measured;
}

const measured = measure();
const save = process.argv.indexOf("--save");
if (save > 0) writeFileSync(process.argv[save + 1]!, `${JSON.stringify(measured, null, 1)}\n`);
const c = coefficients(measured);

// wrangler.toml's defaults (src/config.ts)
const defaults: Settings = {
  ingestShards: 1,
  ingestBatchWindowMs: 90,
  hostReportIntervalMs: 30_000,
  fanoutDeliveryIntervalMs: 25,
  fanoutShards: 1,
  segmentMaxBytes: 16 * 1024 * 1024,
  // `npm run bench -- fanout-cost` (2026-11-29, one warmed-up relay, few/many phases
  // alternated, three runs of three pairs): 6.1–13.4 µs of workerd CPU per message sent, median
  // 9.5, against workerd's own floor for the send in the same runs 8.9–12.9 (median 10.3).
  // Consumers' sockets are not compressed (wrangler.toml's no_web_socket_compression); deflating
  // them cost 27–57 µs a message, which the earlier 37 µs had included. At half a core and 400
  // events/s that is ~131 full-firehose consumers per Fanout (consumersPerFanout), and a relayed
  // Fanout's billed duration is 9.5 µs per message sent (docs/benchmarks.md)
  fanoutCpuSecondsPerMessage: 9.5e-6,
  groupCommitMs: 80,
  repoIndexShards: 4,
};
const lowLatency: Settings = {
  ...defaults,
  ingestBatchWindowMs: 10,
  fanoutDeliveryIntervalMs: 0,
  groupCommitMs: 0,
};

// The loads of issue 14. Accounts active per 30 s window and per hour are assumptions (the
// network's 400 events/s come from a long tail of accounts; docs/cost.md).
const network: Load = {
  name: "full network",
  eventsPerSecond: 400,
  frameBytes: 1500,
  hosts: 2000,
  activeHostsPerWindow: 300,
  activeAccountsPerWindow: 4000,
  activeAccountsPerHour: 60_000,
  storedAccounts: 40_000_000,
  consumers: 10,
  replayHours: 72,
};
const moreConsumers: Load = { ...network, consumers: 1010 };
const small: Load = {
  name: "200 small hosts",
  eventsPerSecond: 5,
  frameBytes: 1500,
  hosts: 200,
  activeHostsPerWindow: 100,
  activeAccountsPerWindow: 100,
  activeAccountsPerHour: 1000,
  storedAccounts: 20_000,
  consumers: 1,
  replayHours: 72,
};

function table(title: string, load: Load, settings: Settings): number {
  const { terms, total } = price(c, load, settings);
  console.log(`\n## ${title}\n`);
  console.log(
    `| ${"term".padEnd(70)} | ${"units/month".padStart(16)} | ${"$/month".padStart(9)} |`,
  );
  console.log(`| ${"-".repeat(70)} | ${"-".repeat(16)}: | ${"-".repeat(9)}: |`);
  for (const t of terms)
    console.log(
      `| ${t.term.padEnd(70)} | ${t.units.padStart(16)} | ${t.dollars.toFixed(2).padStart(9)} |`,
    );
  console.log(
    `| ${"**total**".padEnd(70)} | ${"".padStart(16)} | ${total.toFixed(2).padStart(9)} |`,
  );
  return total;
}

const w = measured.workload;
console.log(
  `# Measured: ${w.events} events from ${w.hosts} hosts, ${w.accounts} accounts, ${w.consumers} consumers (vitest project cost)\n`,
);
const f = (n: number) => n.toFixed(2);
console.log(
  `- events per batch ${f(c.eventsPerBatch)}; hot-log rows per group commit ${f(c.sequencerRowsPerGroup)} (per batch ${f(c.sequencerRowsPerBatch)}), per seal ${f(c.sealRowsFixed)} + ${f(c.sealRowsPerHost)} per host`,
);
console.log(`- Fanout deliveries per batch per Fanout ${f(c.deliveriesPerBatchPerFanout)}`);
console.log(
  `- account state: delta rows per report ${f(c.ingesterDeltaRowsPerReport)} (ingester), ${f(c.indexDeltaRowsPerCall)} per RepoIndex update; packed store ${c.packedRowsPerUpdate.toFixed(4)} rows per account update at ${c.packedMeasuredKeys.toLocaleString("en-US")} accounts (test/cost/packed-scale.test.ts)`,
);
for (const keys of [1e5, 1e6, 1e7, 2e7])
  console.log(
    `  - extrapolated over levels: ${packedRowsPerUpdate(c, keys).toFixed(4)} rows per update at ${keys.toLocaleString("en-US")} accounts`,
  );
console.log(
  `- identity rows per ingester report ${f(c.identityRowsPerReport)}; HostDirectory rows in the whole run ${c.hostDirectoryRows}`,
);
console.log(
  `- RepoIndex calls per ingester report ${f(c.repoIndexCallsPerReport)}; R2 bytes per event ${f(c.r2BytesPerEvent)}`,
);
console.log("\nRows written by statement (class: statement → executions, rows):");
for (const [key, v] of Object.entries(measured.units.statements))
  console.log(`  ${key} → ${v.execs}, ${v.rowsWritten}`);

const x = table(
  "Full network, defaults (400 events/s, 2,000 hosts, 10 consumers, 72 h)",
  network,
  defaults,
);
table(
  "Full network, low-latency profile (10 ms window, no delivery interval)",
  network,
  lowLatency,
);
const more = table("Full network with 1,010 consumers", moreConsumers, defaults);
const z = table("200 small hosts (5 events/s, 1 consumer)", small, defaults);
// the levers of wrangler.toml, each alone against the defaults, full network
console.log("\n## Levers (full network, each setting alone)\n");
console.log("| setting | $/month |\n| --- | ---: |");
const levers: [string, Settings, Load?][] = [
  ["defaults", defaults],
  ["INGEST_BATCH_WINDOW_MS=200", { ...defaults, ingestBatchWindowMs: 200 }],
  ["INGEST_SHARDS=2", { ...defaults, ingestShards: 2 }],
  ["INGEST_SHARDS=4", { ...defaults, ingestShards: 4 }],
  ["SEQUENCER_GROUP_COMMIT_MS=0 (a hot-log row per append)", { ...defaults, groupCommitMs: 0 }],
  ["SEQUENCER_GROUP_COMMIT_MS=200", { ...defaults, groupCommitMs: 200 }],
  ["FANOUT_DELIVERY_INTERVAL_MS=100", { ...defaults, fanoutDeliveryIntervalMs: 100 }],
  [
    "HOST_REPORT_INTERVAL_SECONDS=300 (assumes 25,000 accounts active per 5 min)",
    { ...defaults, hostReportIntervalMs: 300_000 },
    { ...network, activeAccountsPerWindow: 25_000 },
  ],
  ["low-latency profile (10 ms window, no delivery interval)", lowLatency],
];
for (const [label, settings, load] of levers)
  console.log(`| ${label} | ${price(c, load ?? network, settings).total.toFixed(0)} |`);

// a small relay's own choices: its cost is awake shards and one message or request per event
// per hop
console.log("\n## Levers (200 small hosts)\n");
console.log("| setting | $/month |\n| --- | ---: |");
const smallLevers: [string, Settings][] = [
  ["defaults", defaults],
  ["INGEST_SHARDS=2", { ...defaults, ingestShards: 2 }],
  ["INGEST_BATCH_WINDOW_MS=500 (adds up to 0.5 s)", { ...defaults, ingestBatchWindowMs: 500 }],
  ["INGEST_BATCH_WINDOW_MS=1000 (adds up to 1 s)", { ...defaults, ingestBatchWindowMs: 1000 }],
  ["low-latency profile (10 ms window, no delivery interval)", lowLatency],
];
for (const [label, settings] of smallLevers)
  console.log(`| ${label} | ${price(c, small, settings).total.toFixed(2)} |`);

console.log(
  `\ncost: full network $${x.toFixed(0)}/month (10 consumers); +$${(more - x).toFixed(0)} per 1,000 consumers; 200 small hosts $${z.toFixed(0)}/month`,
);
