import { emit, liveConsumer, percentile, startLive, waitUntil } from "./live-harness";
import { reportRatio } from "./report";

// Host send -> consumer receipt, p50/p99, through freehose vs. directly from the host, at a
// steady 200 events/s (the relay's batching windows are part of what is measured).
// INGEST_SHARDS is set: the harness spreads its hosts over shards, the defaults have one (a
// lone appender, whose batches the Sequencer commits at once); two show group commit at work.
const RATE = 200;
const WARM_UP_SECONDS = 2;
const LOW_LATENCY = {
  INGEST_BATCH_WINDOW_MS: "10",
  SEQUENCER_GROUP_COMMIT_MS: "0",
  FANOUT_DELIVERY_INTERVAL_MS: "0",
};
const PROFILES: [string, Record<string, string>][] = [
  [
    "defaults: 90 ms ingest window, 80 ms group commit, 25 ms delivery interval, 1 ingester object",
    { INGEST_SHARDS: "1" },
  ],
  [
    "defaults with 2 ingester objects (their batches meet in group commits)",
    { INGEST_SHARDS: "2" },
  ],
  [
    "low latency: 10 ms ingest window, no group commit, no delivery interval, 1 ingester object",
    { ...LOW_LATENCY, INGEST_SHARDS: "1" },
  ],
];

export default async function main(): Promise<void> {
  // LATENCY_PROFILE=<the start of a profile's name> runs that one, so that runs of this code and
  // of another can be alternated on the shared machine profile by profile
  const only = process.env.LATENCY_PROFILE;
  for (const [profile, vars] of PROFILES)
    if (!only || profile.startsWith(only)) await measure(profile, vars);
}

async function measure(profile: string, vars: Record<string, string>): Promise<void> {
  const setup = await startLive(2, 1000, vars);
  try {
    const sentAt = new Map<string, number>();
    const viaRelay = liveConsumer(
      `${setup.relay.wsUrl}/xrpc/com.atproto.sync.subscribeRepos`,
      sentAt,
    );
    const direct = setup.hosts.map((h) =>
      liveConsumer(`${h.url.replace("http", "ws")}/xrpc/com.atproto.sync.subscribeRepos`, sentAt),
    );
    await Promise.all([viaRelay.ready, ...direct.map((d) => d.ready)]);
    const total = await emit(setup, RATE, sentAt);
    await waitUntil(() => viaRelay.received >= total, 60_000);
    const directLatencies = direct.flatMap((d) => d.latenciesMs);
    for (const p of [50, 99]) {
      reportRatio(
        `latency p${p} (freehose vs directly from the host, 200 events/s)`,
        percentile(viaRelay.latenciesMs, p),
        percentile(directLatencies, p),
        "ms",
      );
    }
    console.log(
      `latency added by freehose, ${profile}: p50 ${(percentile(viaRelay.latenciesMs, 50) - percentile(directLatencies, 50)).toFixed(1)} ms, p99 ${(percentile(viaRelay.latenciesMs, 99) - percentile(directLatencies, 99)).toFixed(1)} ms`,
    );
    // A relay that was just started pays its isolate's warm-up (baseline-compiled code, the
    // account's first DID look-up) on its first events: printed apart from a running relay's.
    const warmRelay = viaRelay.latenciesMs.slice(WARM_UP_SECONDS * RATE);
    const warmDirect = direct.flatMap((d) =>
      d.latenciesMs.slice((WARM_UP_SECONDS * RATE) / direct.length),
    );
    console.log(
      `latency added by freehose once warm (after the first ${WARM_UP_SECONDS} s), ${profile}: p50 ${(percentile(warmRelay, 50) - percentile(warmDirect, 50)).toFixed(1)} ms, p99 ${(percentile(warmRelay, 99) - percentile(warmDirect, 99)).toFixed(1)} ms`,
    );
    viaRelay.close();
    for (const d of direct) d.close();
  } finally {
    await setup.close();
  }
}
