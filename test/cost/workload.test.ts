import { env, SELF } from "cloudflare:test";
import { expect, inject, it } from "vitest";
import { readConfig } from "../../src/config";
import { meterSnapshot, resetMeter } from "../../src/metering/meter";
import { sequencerStub } from "../../src/stubs";
import { connect, RELAY } from "../workers/support";

// The cost workload (`npm run cost`, docs/cost.md): real hosts, many accounts, consumers
// attached, ingest batches, host reports, a seal. It prints the billed units the meter counted
// (src/metering/meter.ts) as one `COST-UNITS {json}` line; scripts/cost.ts scales them to the
// loads of docs/cost.md with Cloudflare's prices.

const control = inject("upstreamControlUrl");
const HOSTS = 6;
const ACCOUNTS_PER_HOST = 20;
const ROUNDS = 10;
const COMMITS_PER_ROUND = 10;
const CONSUMERS = 2;

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
          `/pds/${host.id}/commits?count=${COMMITS_PER_ROUND}`,
        );
        lastSeqs.set(host.hostname, lastSeq);
      }),
    );
    await new Promise((r) => setTimeout(r, 500));
  }
  const events = HOSTS * ROUNDS * COMMITS_PER_ROUND;
  await until("every event sequenced", async () => {
    const state = await sequencerStub(env).getLogState();
    return state.headSeq - startHead >= events;
  });
  for (const consumer of consumers) await consumer.waitFor((r) => r.length >= events, 60_000);
  // let one full report window pass, so host and account reports are part of the count
  await new Promise((r) => setTimeout(r, config.hostReportIntervalMs + 500));
  await sequencerStub(env).sealNow();
  await new Promise((r) => setTimeout(r, 50));
  const elapsedMs = Date.now() - started;
  const units = meterSnapshot();
  for (const consumer of consumers) consumer.ws.close(1000);

  expect(units.calls["Sequencer.appendBatch"]).toBeGreaterThan(0);
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
    })}`,
  );
});
