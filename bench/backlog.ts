import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BacklogOutcome, type DrainProbe, runBacklog } from "../test/support/backlog-scenario";
import type { RelayProcess } from "../test/support/relay-process";
import type { BacklogInput, BacklogValidation, Pass } from "./backlog-validation";
import { onOtherCpu, pinBench, pinRelay, verifySpeedByCpu } from "./cpu-placement";
import { type Inspector, openInspector } from "./inspector";
import { reportRatio } from "./report";
import {
  type CpuSeconds,
  cpuSince,
  groupPids,
  runtimePids,
  threadTimes,
  total,
  type WorkerdCpu,
  workerdCpu,
  wranglerToolingCpu,
} from "./workerd-cpu";

// Catch-up after a restart (test/support/backlog-scenario.ts): the total backlog is the same for
// every host count, so the drain rates compare directly. `npm run bench -- backlog`.

/**
 * BACKLOG_EVENTS: the total backlogs drained, each with every host count. 3,000 events is the
 * issue's operator scenario (a restart right after the hosts wrote it: a fresh isolate and each
 * host's start weigh on every event); 12,000 is 30 s of the network's average 400 events/s, what
 * a deploy or a short outage leaves behind.
 */
const TOTAL_EVENTS = (process.env.BACKLOG_EVENTS ?? "3000,12000").split(",").map(Number);
/**
 * Accounts: 240 per 3,000 events (BACKLOG_ACCOUNTS fixes the count), so that a bigger backlog
 * meets as many new keys and identity look-ups per event as the smaller one.
 */
const accountsFor = (events: number) =>
  Number(process.env.BACKLOG_ACCOUNTS ?? Math.round((events * 240) / 3_000));
const HOST_COUNTS = (process.env.BACKLOG_HOSTS ?? "1,8,32").split(",").map(Number);
/** BACKLOG_PLC_DELAY_MS: how long the scripted PLC takes to answer (a directory on the network). */
const PLC_DELAY_MS = Number(process.env.BACKLOG_PLC_DELAY_MS ?? 0);

const SAMPLE_MS = 250;
/**
 * BACKLOG_TIMELINE=<ms>: print the relay thread's share of each slice of that many ms over the
 * drain, from the crawls on (is it ever idle, and when?).
 */
const TIMELINE_MS = Number(process.env.BACKLOG_TIMELINE ?? 0);
/** BACKLOG_PROFILE=<file>: V8's CPU profile of the relay's isolate over the drain, for DevTools. */
const PROFILE_FILE = process.env.BACKLOG_PROFILE;
/**
 * The relay runs without wrangler's inspector (test/support/quiet-dev.ts) unless BACKLOG_DEVTOOLS=1
 * or a profile is asked for (it needs the inspector): under `wrangler dev` each outbound fetch
 * of the runtime costs four DevTools POSTs to wrangler's Node process, CPU that production does
 * not spend and that takes a core from the relay's thread on this machine.
 */
const DEVTOOLS = process.env.BACKLOG_DEVTOOLS === "1" || PROFILE_FILE !== undefined;
/**
 * Without the inspector, the relay's outbound fetches also skip the Worker miniflare puts in front
 * of them (test/support/quiet-dev.ts), unless BACKLOG_OUTBOUND_WORKER=1: production has neither.
 */
const OUTBOUND_WORKER = DEVTOOLS || process.env.BACKLOG_OUTBOUND_WORKER === "1";

type ThreadTimes = Map<string, { run: number; wait: number }>;

/**
 * Per thread of the relay's runtime, seconds on a core and seconds runnable but waiting for one
 * (/proc/<pid>/task/<tid>/schedstat). On this shared machine a low CPU share can mean the thread
 * had nothing to do (the pipeline stalls) or that it was not given a core; the wait tells them
 * apart. The busiest thread is the one running JavaScript (all objects share it under
 * `wrangler dev`).
 */
function runtimeThreads(pids: number[]): ThreadTimes {
  const out: ThreadTimes = new Map();
  for (const pid of pids) {
    try {
      for (const task of readdirSync(`/proc/${pid}/task`))
        out.set(`${pid}/${task}`, threadTimes(pid, task));
    } catch {
      // the process ended while we read it
    }
  }
  return out;
}

/** The thread that ran most between two readings: its id, run and wait seconds. */
function busiestThread(
  before: ThreadTimes,
  after: ThreadTimes,
): { tid: string; run: number; wait: number } {
  let best = { tid: "", run: 0, wait: 0 };
  for (const [tid, t] of after) {
    const b = before.get(tid) ?? { run: 0, wait: 0 };
    const d = { tid, run: t.run - b.run, wait: t.wait - b.wait };
    if (d.run > best.run) best = d;
  }
  return best;
}

/**
 * The busiest thread's share of a core in each slice of `sliceMs` (by the readings around each
 * slice's end), and how long it waited for one.
 */
function threadTimeline(samples: { ms: number; threads: ThreadTimes }[], sliceMs: number): string {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last) return "no timeline";
  const { tid } = busiestThread(first.threads, last.threads);
  const at = (ms: number) => {
    // the last reading at or before ms
    let best = first;
    for (const s of samples) if (s.ms <= ms) best = s;
    return best;
  };
  const slices: string[] = [];
  for (let from = first.ms; from < last.ms; from += sliceMs) {
    const a = at(from);
    const b = at(from + sliceMs);
    const dt = b.ms - a.ms;
    if (dt <= 0) continue;
    const ta = a.threads.get(tid) ?? { run: 0, wait: 0 };
    const tb = b.threads.get(tid) ?? ta;
    const run = Math.round((100 * (tb.run - ta.run) * 1000) / dt);
    const wait = Math.round((100 * (tb.wait - ta.wait) * 1000) / dt);
    slices.push(wait >= 5 ? `${run}(w${wait})` : `${run}`);
  }
  return `relay thread % busy per ${sliceMs} ms from the probe's start: ${slices.join(" ")}`;
}

/**
 * BACKLOG_STEADY=1: each host count is drained a second time with twice the events over the same
 * number of accounts, and the difference between the two drains is the steady state: the cost of
 * the extra events, once the isolate is warm and every account known. (The relay's head cannot
 * be sampled during a drain: a host's queued frames are validated back to back, and its
 * `_health` answers wait for them.)
 */
const STEADY = process.env.BACKLOG_STEADY === "1";
/** BACKLOG_ROUNDS: drains of each host count, alternated (1, 8, 32, 1, 8, 32, ...). */
const ROUNDS = Math.max(1, Number(process.env.BACKLOG_ROUNDS ?? 3));

type DrainCpu = {
  events: number;
  seconds: number;
  /** CPU seconds of the busiest runtime thread (the one running JavaScript) over the drain. */
  threadRun: number;
};

/**
 * Where the drain's time goes: CPU of the relay's runtime (one workerd thread runs every object),
 * of wrangler's dev proxy and Node process, and of this process (the scripted hosts and PLC), over the drain, and
 * the runtime's busiest and idlest quarter-seconds (is its thread saturated?).
 */
function cpuProbe(events: () => number): DrainProbe & {
  report(): string;
  figures(): DrainCpu | null;
} {
  let relayAt: RelayProcess | null = null;
  let pids: number[] = [];
  let first: WorkerdCpu | null = null;
  let last: WorkerdCpu | null = null;
  let toolingFirst: CpuSeconds | null = null;
  let tooling: CpuSeconds | null = null;
  let nodeFirst: NodeJS.CpuUsage | null = null;
  let nodeCpu: NodeJS.CpuUsage | null = null;
  let startedMs = 0;
  let threadsFirst: ThreadTimes = new Map();
  let busiest = { run: 0, wait: 0 };
  let wallMs = 0;
  const shares: number[] = [];
  let timer: ReturnType<typeof setInterval> | null = null;
  let timelineTimer: ReturnType<typeof setInterval> | null = null;
  const timeline: { ms: number; threads: ThreadTimes }[] = [];
  let inspector: Inspector | null = null;
  const read = (relay: RelayProcess) => workerdCpu(relay.pid, relay.port);
  return {
    async start(relay) {
      if (PROFILE_FILE) {
        inspector = await openInspector(relay.pid);
        await inspector.call("Profiler.enable");
        await inspector.call("Profiler.setSamplingInterval", { interval: 200 });
        await inspector.call("Profiler.start");
      }
      relayAt = relay;
      pids = runtimePids(relay.pid, relay.port);
      if (pids[0] !== undefined) pinRelay(groupPids(relay.pid), pids[0]);
      first = read(relay);
      toolingFirst = wranglerToolingCpu(relay.pid);
      threadsFirst = runtimeThreads(pids);
      nodeFirst = process.cpuUsage();
      startedMs = performance.now();
      let previous = first;
      timer = setInterval(() => {
        if (!relayAt) return;
        const now = read(relayAt);
        shares.push(total(cpuSince(previous, now).runtime) / (SAMPLE_MS / 1000));
        previous = now;
      }, SAMPLE_MS);
      if (TIMELINE_MS > 0) {
        const sample = () =>
          timeline.push({ ms: performance.now(), threads: runtimeThreads(pids) });
        sample();
        timelineTimer = setInterval(sample, Math.max(5, Math.floor(TIMELINE_MS / 4)));
      }
    },
    async end(relay) {
      if (timer) clearInterval(timer);
      if (timelineTimer) {
        clearInterval(timelineTimer);
        timeline.push({ ms: performance.now(), threads: runtimeThreads(pids) });
        console.log(`backlog: ${threadTimeline(timeline, TIMELINE_MS)}`);
      }
      last = read(relay);
      const toolingLast = wranglerToolingCpu(relay.pid);
      tooling = {
        user: toolingLast.user - (toolingFirst?.user ?? 0),
        system: toolingLast.system - (toolingFirst?.system ?? 0),
      };
      busiest = busiestThread(threadsFirst, runtimeThreads(pids));
      nodeCpu = process.cpuUsage(nodeFirst ?? undefined);
      wallMs = performance.now() - startedMs;
      relayAt = null;
      if (inspector && PROFILE_FILE) {
        const { profile } = await inspector.call<{ profile: unknown }>("Profiler.stop");
        writeFileSync(PROFILE_FILE, JSON.stringify(profile));
        inspector.close();
      }
    },
    figures() {
      if (!last) return null;
      return { events: events(), seconds: wallMs / 1000, threadRun: busiest.run };
    },
    report() {
      if (!first || !last || !nodeCpu) return "no CPU figures";
      const cpu = cpuSince(first, last);
      const seconds = wallMs / 1000;
      const pct = (s: number) => `${Math.round((100 * s) / seconds)} %`;
      const n = events();
      const perEvent = (s: number) => `${Math.round((s * 1e6) / n)} µs/event`;
      const node = (nodeCpu.user + nodeCpu.system) / 1e6;
      const sorted = [...shares].sort((a, b) => a - b);
      const q = (f: number) => Math.round(100 * (sorted[Math.floor(f * (sorted.length - 1))] ?? 0));
      return [
        `drain ${seconds.toFixed(2)} s`,
        `workerd runtime ${total(cpu.runtime).toFixed(2)} s CPU (${pct(total(cpu.runtime))} of one core, ${perEvent(total(cpu.runtime))}; system ${cpu.runtime.system.toFixed(2)} s)`,
        `its busiest thread ran ${busiest.run.toFixed(2)} s (${pct(busiest.run)}, ${perEvent(busiest.run)}) and waited for a core ${busiest.wait.toFixed(2)} s (${pct(busiest.wait)})`,
        `per ${SAMPLE_MS} ms: median ${q(0.5)} %, min ${q(0)} %, max ${q(1)} %`,
        `wrangler proxy ${total(cpu.proxy).toFixed(2)} s and wrangler's Node ${tooling ? total(tooling).toFixed(2) : "?"} s (dev tooling, absent in production${DEVTOOLS ? ": wrangler dev's inspector gets each of the runtime's outbound fetches as four DevTools events" : "; no inspector"})`,
        `hosts + PLC (this process) ${node.toFixed(2)} s (${pct(node)})`,
      ].join("; ");
    },
  };
}

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

/**
 * The same backlog validated by the relay's validation code in a fresh Node process on one core
 * (bench/backlog-validation.ts): a cold first pass, then warm passes.
 */
function validateBacklog(outcome: BacklogOutcome): BacklogValidation {
  const dir = mkdtempSync(join(tmpdir(), "freehose-backlog-"));
  const file = join(dir, "backlog.json");
  try {
    const input: BacklogInput = {
      hosts: outcome.backlog.map((h) => ({
        hostname: h.hostname,
        frames: h.frames.map((f) => Buffer.from(f).toString("base64")),
      })),
      documents: Object.fromEntries(outcome.documents),
    };
    writeFileSync(file, JSON.stringify(input));
    const script = join(BENCH_DIR, "backlog-validation.ts");
    // placed as the relay is (cpu-placement.ts): its validating thread on the relay thread's
    // core, V8's helper threads on the other one
    const [command, ...args] = onOtherCpu([process.execPath, ...process.execArgv, script, file]);
    const out = execFileSync(command as string, args, {
      encoding: "utf8",
      maxBuffer: 16 * 1024 * 1024,
    });
    return JSON.parse(out.trim().split("\n").at(-1) as string) as BacklogValidation;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pct = (x: number) => `${Math.round(100 * x)} %`;
const perSecond = (events: number, seconds: number) => Math.round(events / seconds);
const micros = (seconds: number, events: number) => Math.round((seconds * 1e6) / events);

/** The median warm pass (by CPU). */
function warmPass(validation: BacklogValidation): Pass {
  const sorted = [...validation.warm].sort((a, b) => a.cpuSeconds - b.cpuSeconds);
  return sorted[Math.floor(sorted.length / 2)] as Pass;
}

/**
 * The issue's pipeline-efficiency goal: the drain's rate against the rate at which one core
 * validates the same frames. The drain starts in a fresh isolate, so the goal's reference is the
 * cold one (a fresh process's first pass over the same frames); the warm one (a later pass, with
 * every account's document parsed and key seen for the first time again) is printed beside it.
 * Rates both per wall second (this machine's cores are shared: the relay's thread waits for one)
 * and per CPU-second of the relay's JavaScript thread.
 */
function reportEfficiency(
  hostCount: number,
  outcome: BacklogOutcome,
  drain: DrainCpu,
  validation: BacklogValidation,
): Efficiency {
  const { cold } = validation;
  const warm = warmPass(validation);
  const events = cold.events;
  const label = `backlog: pipeline efficiency ${hostCount} host${hostCount === 1 ? "" : "s"}`;
  const coldRate = perSecond(events, cold.wallSeconds);
  const warmRate = perSecond(warm.events, warm.wallSeconds);
  console.log(
    `${label}: ${pct(outcome.rate / coldRate)} (drain ${Math.round(outcome.rate)} events/s vs validation ${coldRate} events/s of the same frames on one core, cold; per thread-CPU-second: ${pct(cold.cpuSeconds / drain.threadRun)}); against warm validation (${warmRate} events/s): ${pct(outcome.rate / warmRate)}, per CPU-second ${pct(warm.cpuSeconds / drain.threadRun)}`,
  );
  console.log(
    `${label}: relay thread ${micros(drain.threadRun, events)} µs CPU/event; validation cold ${micros(cold.cpuSeconds, events)} µs, warm ${micros(warm.cpuSeconds, warm.events)} µs; outside validation ${micros(drain.threadRun - cold.cpuSeconds, events)} µs/event against cold, ${micros(drain.threadRun - warm.cpuSeconds, events)} against warm`,
  );
  return { cold: outcome.rate / coldRate, warm: outcome.rate / warmRate };
}

/** A drain's rate against the validation of its frames, cold and warm (per wall second). */
type Efficiency = { cold: number; warm: number };

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/**
 * The steady state (BACKLOG_STEADY): what the second drain's extra events cost, against the
 * warm reference's second half of the same (longer) backlog, whose accounts are all known too.
 */
function reportSteady(hostCount: number, first: Drained, second: Drained): void {
  const events = second.drain.events - first.drain.events;
  const thread = (second.drain.threadRun - first.drain.threadRun) / events;
  const wall = second.drain.seconds - first.drain.seconds;
  const { laterHalf } = warmPass(second.validation);
  const validation = laterHalf.cpuSeconds / laterHalf.events;
  console.log(
    `backlog: pipeline efficiency ${hostCount} host${hostCount === 1 ? "" : "s"}, steady state (the extra ${events} events of a drain of ${second.drain.events} against one of ${first.drain.events}, same accounts): per thread-CPU-second ${pct(validation / thread)} (relay thread ${micros(thread, 1)} µs CPU/event, warm validation of the second half of the same backlog ${micros(validation, 1)} µs, outside validation ${micros(thread - validation, 1)} µs); drain ${perSecond(events, wall)} events/s vs validation ${perSecond(laterHalf.events, laterHalf.wallSeconds)} events/s`,
  );
}

type Drained = {
  outcome: BacklogOutcome;
  drain: DrainCpu;
  validation: BacklogValidation;
  efficiency: Efficiency;
};

async function drainOnce(
  hostCount: number,
  totalEvents: number,
  accounts: number,
): Promise<Drained | null> {
  const perHost = Math.ceil(totalEvents / hostCount);
  const probe = cpuProbe(() => hostCount * perHost);
  const outcome = await runBacklog(hostCount, totalEvents, accounts, probe, PLC_DELAY_MS, {
    devTools: DEVTOOLS,
    outboundWorker: OUTBOUND_WORKER,
  });
  console.log(
    `backlog: ${hostCount} hosts × ${perHost} events (${accounts} accounts): ${Math.round(outcome.rate)} events/s, ${outcome.reconnects} reconnects, lost ${outcome.lost}, duplicated ${outcome.duplicated}${outcome.complete ? "" : " (INCOMPLETE)"}`,
  );
  console.log(`backlog: ${hostCount} hosts, CPU: ${probe.report()}`);
  const drain = probe.figures();
  if (!drain || drain.threadRun <= 0) return null;
  const validation = validateBacklog(outcome);
  const efficiency = reportEfficiency(hostCount, outcome, drain, validation);
  return { outcome, drain, validation, efficiency };
}

export default async function main(): Promise<void> {
  console.log(
    `backlog: relay under ${DEVTOOLS ? "wrangler dev (with its inspector and miniflare's outbound Worker)" : `wrangler's API without the inspector (BACKLOG_DEVTOOLS=1: wrangler dev), ${OUTBOUND_WORKER ? "outbound fetches through miniflare's outbound Worker" : "outbound fetches straight to the network (BACKLOG_OUTBOUND_WORKER=1: through miniflare's Worker)"}`}`,
  );
  console.log(`backlog: cores: ${verifySpeedByCpu()} (BACKLOG_CPU, BACKLOG_PIN=0 to not pin)`);
  pinBench();
  for (const events of TOTAL_EVENTS) {
    const accounts = accountsFor(events);
    const drains = new Map<number, Drained[]>(HOST_COUNTS.map((h) => [h, []]));
    // host counts alternated round by round: this machine's speed drifts by tens of per cent
    // over minutes, more than what separates the host counts
    for (let round = 0; round < ROUNDS; round++) {
      for (const hostCount of HOST_COUNTS) {
        const drained = await drainOnce(hostCount, events, accounts);
        if (drained && STEADY) {
          const twice = await drainOnce(hostCount, 2 * events, accounts);
          if (twice) reportSteady(hostCount, drained, twice);
        }
        if (drained) drains.get(hostCount)?.push(drained);
      }
    }
    reportRounds(events, drains);
  }
}

/** Medians over the rounds: each host count's drain rate and efficiency, and the ratio to one host. */
function reportRounds(events: number, drains: Map<number, Drained[]>): void {
  const label = `backlog drain of ${events.toLocaleString("en-US")} events`;
  const oneHost = (drains.get(1) ?? []).map((d) => d.outcome.rate);
  for (const [hostCount, runs] of drains) {
    if (runs.length === 0) continue;
    const rates = runs.map((d) => d.outcome.rate);
    const failed = runs.filter(
      ({ outcome: o }) => o.lost + o.duplicated + o.outOfOrder + o.seqGaps > 0 || !o.complete,
    ).length;
    console.log(
      `${label}, ${hostCount} host${hostCount === 1 ? "" : "s"}, ${runs.length} rounds: median ${Math.round(median(rates))} events/s (${rates.map(Math.round).join(", ")}); pipeline efficiency median ${pct(median(runs.map((d) => d.efficiency.cold)))} against cold validation, ${pct(median(runs.map((d) => d.efficiency.warm)))} against warm; ${failed} rounds with a loss, duplicate, reordering, gap or an unfinished drain`,
    );
    if (hostCount === 1 || oneHost.length === 0) continue;
    const byRound = rates.map((r, i) =>
      oneHost[i] ? (r / (oneHost[i] as number)).toFixed(2) : "—",
    );
    reportRatio(
      `${label}, ${hostCount} hosts vs 1 host (medians of ${runs.length} alternated rounds; by round ${byRound.join(", ")})`,
      median(rates),
      median(oneHost),
      "events/s",
    );
    // The same ratio with each drain measured against its own reference: the warm validation of
    // its frames, run right after it on the same core. This VM's core slows down by up to ~40 %
    // for minutes at a time (cpu-placement.ts), and a drain caught in such a spell drags its raw
    // ratio down while its reference, measured in the same spell, shows the spell.
    const oneHostEfficiency = (drains.get(1) ?? []).map((d) => d.efficiency.warm);
    const corrected = runs.map((d, i) =>
      oneHostEfficiency[i] ? d.efficiency.warm / (oneHostEfficiency[i] as number) : Number.NaN,
    );
    console.log(
      `${label}, ${hostCount} hosts vs 1 host, each drain against its own reference (warm validation right after it, same core): median ${median(corrected.filter((c) => !Number.isNaN(c))).toFixed(2)}; by round ${corrected.map((c) => (Number.isNaN(c) ? "—" : c.toFixed(2))).join(", ")}`,
    );
  }
}
