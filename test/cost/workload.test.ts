import { env, SELF } from "cloudflare:test";
import { expect, inject, it } from "vitest";
import { readConfig } from "../../src/config";
import { ingesterObjectName } from "../../src/ingest/partition";
import { type MeterSnapshot, meterSnapshot, resetMeter } from "../../src/metering/meter";
import { hostIngesterStub, sequencerStub } from "../../src/stubs";
import { connect, RELAY } from "../workers/support";

// The cost workload (`npm run cost`, docs/cost.md): real hosts, many accounts, signed commits,
// #identity and #account events, consumers attached, ingest batches, host reports, a seal. It prints the billed units the meter counted
// (src/metering/meter.ts) as one `COST-UNITS {json}` line; scripts/cost.ts scales them to the
// loads of docs/cost.md with Cloudflare's prices.

const control = inject("upstreamControlUrl");
const HOSTS = 6;
const ACCOUNTS_PER_HOST = 20;
const ROUNDS = 10;
const COMMITS_PER_ROUND = 10;
const CONSUMERS = 2;

/** What was counted between two snapshots. */
function difference(after: MeterSnapshot, before: MeterSnapshot): MeterSnapshot {
  const objects: MeterSnapshot["objects"] = {};
  for (const [name, units] of Object.entries(after.objects)) {
    const was = before.objects[name];
    objects[name] = Object.fromEntries(
      Object.entries(units).map(([k, v]) => [k, v - (was?.[k as keyof typeof units] ?? 0)]),
    ) as (typeof objects)[string];
  }
  const calls: Record<string, number> = {};
  for (const [key, n] of Object.entries(after.calls)) calls[key] = n - (before.calls[key] ?? 0);
  const statements: MeterSnapshot["statements"] = {};
  for (const [key, v] of Object.entries(after.statements)) {
    const was = before.statements[key] ?? { execs: 0, rowsWritten: 0 };
    statements[key] = { execs: v.execs - was.execs, rowsWritten: v.rowsWritten - was.rowsWritten };
  }
  const r2 = {
    classA: after.r2.classA - before.r2.classA,
    classB: after.r2.classB - before.r2.classB,
    bytesPut: after.r2.bytesPut - before.r2.bytesPut,
  };
  return { objects, calls, statements, r2 };
}

type CostHost = { id: string; hostname: string; dids: string[] };

async function post<T>(path: string): Promise<T> {
  return (await (await fetch(`${control}${path}`, { method: "POST" })).json()) as T;
}

async function crawl(hostname: string): Promise<void> {
  const res = await SELF.fetch(`${RELAY}/xrpc/com.atproto.sync.requestCrawl`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ hostname }),
  });
  expect(res.status).toBe(200);
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it("measures the billed units of a realistic mix", { timeout: 240_000 }, async () => {
  const config = readConfig(env);
  const hosts: CostHost[] = [];
  for (let i = 0; i < HOSTS; i++)
    hosts.push(await post<CostHost>(`/pds?accounts=${ACCOUNTS_PER_HOST}`));
  for (const host of hosts) await crawl(host.hostname);
  const consumers = [];
  for (let i = 0; i < CONSUMERS; i++) consumers.push(await connect());
  const startHead = (await sequencerStub(env).getLogState()).headSeq;
  // warm-up done: every object exists and every socket is open
  await new Promise((r) => setTimeout(r, 1_000));
  resetMeter();
  const started = Date.now();

  const lastSeqs = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    await Promise.all(
      hosts.map(async (host) => {
        const { lastSeq } = await post<{ lastSeq: number }>(
          `/pds/${host.id}/commits?count=${COMMITS_PER_ROUND}&identityAndAccount=${round % 5 === 0 ? 1 : 0}`,
        );
        lastSeqs.set(host.hostname, lastSeq);
      }),
    );
    await new Promise((r) => setTimeout(r, 500));
  }
  // every fifth round also carries an #identity and an #account per host
  const events = HOSTS * (ROUNDS * COMMITS_PER_ROUND + Math.ceil(ROUNDS / 5) * 2);
  await until("every event sequenced", async () => {
    const state = await sequencerStub(env).getLogState();
    return state.headSeq - startHead >= events;
  });
  for (const consumer of consumers) await consumer.waitFor((r) => r.length >= events, 60_000);
  // let one full report window pass, so host and account reports are part of the count
  await new Promise((r) => setTimeout(r, config.hostReportIntervalMs + 500));
  // then a report with no events, as the ingesters' watchdog makes every 30 s: what quiet hosts
  // cost
  const beforeQuiet = meterSnapshot();
  const objectNames = new Set(
    hosts.map((h) => ingesterObjectName(h.hostname, false, config.ingestShards)),
  );
  for (const name of objectNames) await hostIngesterStub(env, name).publishState();
  await new Promise((r) => setTimeout(r, 50));
  const quiet = difference(meterSnapshot(), beforeQuiet);
  await sequencerStub(env).sealNow();
  await new Promise((r) => setTimeout(r, 50));
  const elapsedMs = Date.now() - started;
  const units = meterSnapshot();
  for (const consumer of consumers) consumer.ws.close(1000);

  // batches reach the Sequencer as messages on append sockets, or as plain calls (the fallback)
  expect(
    (units.calls["Sequencer.appendBatch"] ?? 0) + (units.objects.Sequencer?.webSocketMessages ?? 0),
  ).toBeGreaterThan(0);
  console.log(
    `COST-UNITS ${JSON.stringify({
      workload: {
        hosts: HOSTS,
        accounts: HOSTS * ACCOUNTS_PER_HOST,
        events,
        consumers: CONSUMERS,
        elapsedMs,
        reportWindows: elapsedMs / config.hostReportIntervalMs,
        frameBytes: 0,
      },
      config: {
        ingestShards: config.ingestShards,
        repoIndexShards: config.repoIndexShards,
        fanoutShards: config.fanoutShards,
        ingestBatchWindowMs: config.ingestBatchWindowMs,
        hostReportIntervalMs: config.hostReportIntervalMs,
        fanoutDeliveryIntervalMs: config.fanoutDeliveryIntervalMs,
        segmentMaxBytes: config.segmentMaxBytes,
      },
      units,
      quiet,
    })}`,
  );
});
