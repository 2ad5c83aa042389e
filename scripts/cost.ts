import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { coefficients, type Load, type Measured, price, type Settings } from "./cost-model";

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
  const line = run.stdout.split("\n").find((l) => l.includes("COST-UNITS "));
  if (run.status !== 0 || !line) {
    process.stderr.write(run.stdout.slice(-4000) + run.stderr.slice(-4000));
    throw new Error("the cost workload failed (npx vitest run --project cost)");
  }
  return JSON.parse(line.slice(line.indexOf("COST-UNITS ") + 11)) as Measured;
}

const measured = measure();
const save = process.argv.indexOf("--save");
if (save > 0) writeFileSync(process.argv[save + 1]!, `${JSON.stringify(measured, null, 1)}\n`);
const c = coefficients(measured);

const defaults: Settings = {
  ingestShards: 4,
  ingestBatchWindowMs: 100,
  hostReportIntervalMs: 30_000,
  fanoutDeliveryIntervalMs: 50,
  fanoutShards: 2,
  segmentMaxBytes: 16 * 1024 * 1024,
  consumersPerFanout: 24,
};
const lowLatency: Settings = { ...defaults, ingestBatchWindowMs: 10, fanoutDeliveryIntervalMs: 0 };

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
    `| ${"term".padEnd(58)} | ${"units/month".padStart(16)} | ${"$/month".padStart(9)} |`,
  );
  console.log(`| ${"-".repeat(58)} | ${"-".repeat(16)}: | ${"-".repeat(9)}: |`);
  for (const t of terms)
    console.log(
      `| ${t.term.padEnd(58)} | ${t.units.padStart(16)} | ${t.dollars.toFixed(2).padStart(9)} |`,
    );
  console.log(
    `| ${"**total**".padEnd(58)} | ${"".padStart(16)} | ${total.toFixed(2).padStart(9)} |`,
  );
  return total;
}

const w = measured.workload;
console.log(
  `# Measured: ${w.events} events from ${w.hosts} hosts, ${w.accounts} accounts, ${w.consumers} consumers (vitest project cost)\n`,
);
const f = (n: number) => n.toFixed(2);
console.log(
  `- events per batch ${f(c.eventsPerBatch)}; event-log rows per batch ${f(c.sequencerRowsPerBatch)}, per seal ${f(c.sealRowsFixed)} + ${f(c.sealRowsPerHost)} per host, Sequencer requests per batch ${f(c.sequencerRequestsPerBatch)}`,
);
console.log(`- Fanout deliveries per batch per Fanout ${f(c.deliveriesPerBatchPerFanout)}`);
console.log(
  `- account state rows per active account per report window: ingester ${f(c.ingesterRowsPerAccountWindow)}, RepoIndex ${f(c.repoIndexRowsPerAccountWindow)} (${c.accountWindows} account-windows)`,
);
console.log(
  `- host rows per host per report window: HostDirectory ${f(c.hostDirectoryRowsPerHostWindow)} (quiet host ${f(c.hostDirectoryRowsPerQuietHostWindow)}), ingester ${f(c.ingesterRowsPerActiveHostWindow)} (${c.hostWindows} host-windows)`,
);
console.log(
  `- identity cache rows per document fetched ${f(c.identityRowsPerFetch)}; ingester rows not attributed ${c.ingesterOtherRows}`,
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
  ["INGEST_SHARDS=1", { ...defaults, ingestShards: 1 }],
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

console.log(
  `\ncost: full network $${x.toFixed(0)}/month (10 consumers); +$${(more - x).toFixed(0)} per 1,000 consumers; 200 small hosts $${z.toFixed(0)}/month`,
);
