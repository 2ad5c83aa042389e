import { rmSync } from "node:fs";
import { compareLogs, type HostLog, isClean } from "../test/faults/compare-logs";
import { readHostLog } from "../test/faults/fault-run";
import { runActivity, seededRandom } from "../test/support/activity";
import { startPdsNetwork, watchRelayConnections } from "../test/support/pds-network";
import {
  type RelayProcess,
  requestCrawl,
  startRelay,
  workerdRssBytes,
} from "../test/support/relay-process";
import { readLog, recordStream, type StreamRecorder } from "../test/support/stream-recorder";

// `npm run soak`: minutes of continuous activity on several reference PDS hosts, consumers
// connecting at random cursors and leaving, a kill -9 of the relay now and then, and workerd's
// memory sampled from /proc all along. Not in CI. It reports whether memory plateaus within
// each relay lifetime, and at the end compares the relay's log with everything the hosts wrote.
//
//   SOAK_MINUTES (5)  SOAK_HOSTS (3)  SOAK_KILL_EVERY_SECONDS (90, 0 = never)
//   SOAK_EVENTS_PER_SECOND (10)  SOAK_SEED (random, printed)

const SUBSCRIBE = "/xrpc/com.atproto.sync.subscribeRepos";
const minutes = Number(process.env.SOAK_MINUTES ?? 5);
const hostCount = Number(process.env.SOAK_HOSTS ?? 3);
const killEverySeconds = Number(process.env.SOAK_KILL_EVERY_SECONDS ?? 90);
const eventsPerSecond = Number(process.env.SOAK_EVENTS_PER_SECOND ?? 10);
const seed = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 1_000_000_000));
const SAMPLE_EVERY_MS = 5_000;
/** Samples this early in a lifetime are start-up (code loading, first connections). */
const WARM_UP_MS = 30_000;

type Sample = { atMs: number; rssMb: number; head: number; consumers: number };
type Lifetime = { startedAtMs: number; samples: Sample[] };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function head(relay: RelayProcess): Promise<number> {
  try {
    const res = await fetch(`${relay.url}/xrpc/_health`);
    return ((await res.json()) as { seq?: number }).seq ?? 0;
  } catch {
    return 0;
  }
}

/** A consumer's seqs must follow its cursor without a gap or a repeat while it is connected. */
function consumerAnomalies(recorder: StreamRecorder, cursor: number): string | undefined {
  let expected = cursor + 1;
  for (const e of recorder.events) {
    if (e.seq === null) continue;
    if (e.seq !== expected) return `cursor ${cursor}: got seq ${e.seq} where ${expected} was due`;
    expected++;
  }
  return undefined;
}

/** Memory plateaus if, after warm-up, the second half of a lifetime peaks no higher than 10 % above the first. */
function plateau(lifetime: Lifetime): {
  verdict: string;
  firstHalfMb: number;
  secondHalfMb: number;
} {
  const settled = lifetime.samples.filter((s) => s.atMs - lifetime.startedAtMs >= WARM_UP_MS);
  if (settled.length < 4) return { verdict: "too short to tell", firstHalfMb: 0, secondHalfMb: 0 };
  const half = Math.floor(settled.length / 2);
  const peak = (samples: Sample[]) => Math.max(...samples.map((s) => s.rssMb));
  const firstHalfMb = peak(settled.slice(0, half));
  const secondHalfMb = peak(settled.slice(half));
  return {
    verdict: secondHalfMb <= firstHalfMb * 1.1 ? "plateaus" : "still growing",
    firstHalfMb,
    secondHalfMb,
  };
}

async function main(): Promise<void> {
  console.log(
    `soak: ${minutes} min, ${hostCount} hosts, ${eventsPerSecond} writes/s, kill every ${killEverySeconds || "never"} s, SOAK_SEED=${seed}`,
  );
  const random = seededRandom(seed);
  const network = await startPdsNetwork({ pdsCount: hostCount, accountsPerPds: 3 });
  const watches = network.hosts.map((host) => ({ host, watch: watchRelayConnections(host) }));
  let relay = await startRelay({ plcUrl: network.plcUrl });
  const persistDir = relay.persistDir;
  const began = Date.now();
  const lifetimes: Lifetime[] = [{ startedAtMs: began, samples: [] }];
  const anomalies: string[] = [];
  const consumers = new Set<{ recorder: StreamRecorder; cursor: number; until: number }>();
  let kills = 0;
  let consumersServed = 0;
  const stop = new AbortController();
  try {
    for (const { host } of watches) await requestCrawl(relay.url, host.hostname);
    const writes = runActivity(network, { seed, signal: stop.signal, eventsPerSecond });
    let nextKill = killEverySeconds > 0 ? began + killEverySeconds * 1000 : Infinity;
    let nextSample = began;
    const end = began + minutes * 60_000;
    while (Date.now() < end) {
      const now = Date.now();
      // consumers: up to three at a time, each at a random cursor, each for a few seconds
      for (const c of [...consumers]) {
        if (now < c.until && !c.recorder.closed) continue;
        c.recorder.close();
        const problem = consumerAnomalies(c.recorder, c.cursor);
        if (problem) anomalies.push(problem);
        consumers.delete(c);
      }
      if (consumers.size < 3 && random() < 0.3) {
        const cursor = Math.floor(random() * ((await head(relay)) + 1));
        const recorder = recordStream(`${relay.wsUrl}${SUBSCRIBE}?cursor=${cursor}`);
        recorder.ready.catch(() => undefined);
        consumers.add({ recorder, cursor, until: now + 2_000 + random() * 8_000 });
        consumersServed++;
      }
      if (now >= nextSample) {
        nextSample = now + SAMPLE_EVERY_MS;
        const sample = {
          atMs: now,
          rssMb: Math.round(workerdRssBytes(relay) / 1e5) / 10,
          head: await head(relay),
          consumers: consumers.size,
        };
        lifetimes.at(-1)?.samples.push(sample);
        console.log(
          `  +${Math.round((now - began) / 1000)} s  workerd ${sample.rssMb} MB  head ${sample.head}  consumers ${sample.consumers}`,
        );
      }
      if (now >= nextKill) {
        for (const c of consumers) c.recorder.close();
        consumers.clear();
        await relay.kill();
        kills++;
        await sleep(1_000 + random() * 2_000);
        relay = await startRelay({ plcUrl: network.plcUrl, persistDir });
        for (const { host } of watches)
          await requestCrawl(relay.url, host.hostname).catch(() => undefined);
        lifetimes.push({ startedAtMs: Date.now(), samples: [] });
        console.log(`  killed and restarted (${kills})`);
        nextKill = Date.now() + killEverySeconds * 1000;
      }
      await sleep(250);
    }
    stop.abort();
    await writes;
    for (const c of consumers) c.recorder.close();
    await sleep(5_000);

    const hostLogs: HostLog[] = [];
    for (const { host, watch } of watches)
      hostLogs.push({
        hostname: host.hostname,
        events: await readHostLog(host),
        floor: watch.floor() ?? 0,
      });
    const last = await head(relay);
    const relayLog = await readLog(`${relay.wsUrl}${SUBSCRIBE}`, 0, last, 120_000);
    const comparison = compareLogs(hostLogs, relayLog);
    console.log("\nmemory per relay lifetime (workerd RSS, after 30 s of warm-up):");
    for (const [i, lifetime] of lifetimes.entries()) {
      const p = plateau(lifetime);
      console.log(
        `  lifetime ${i + 1}: ${lifetime.samples.length} samples, peak first half ${p.firstHalfMb} MB, second half ${p.secondHalfMb} MB: ${p.verdict}`,
      );
    }
    console.log(
      `\n${kills} kills, ${consumersServed} consumers served, consumer anomalies: ${anomalies.length ? anomalies.slice(0, 5).join("; ") : "none"}`,
    );
    console.log(
      `log check: ${isClean(comparison) ? "clean" : "NOT CLEAN"} ${JSON.stringify({
        owed: comparison.owedEvents,
        relayed: comparison.relayEvents,
        missing: comparison.missing,
        duplicated: comparison.duplicated.length,
        outOfOrder: comparison.outOfOrder.length,
        seqGaps: comparison.seqGaps.length,
      })}`,
    );
    if (!isClean(comparison) || anomalies.length > 0) process.exitCode = 1;
  } finally {
    stop.abort();
    for (const c of consumers) c.recorder.close();
    for (const { watch } of watches) watch.close();
    await relay.kill();
    rmSync(persistDir, { recursive: true, force: true });
    await network.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
