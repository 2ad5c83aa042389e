import { rmSync } from "node:fs";
import { runActivity, seededRandom } from "../support/activity";
import {
  type ConnectionWatch,
  type PdsHost,
  type PdsNetwork,
  pdsHead,
  TEST_READER_HEADER,
} from "../support/pds-network";
import {
  type RelayOptions,
  type RelayProcess,
  requestCrawl,
  startRelay,
} from "../support/relay-process";
import { type ResumingConsumer, readLog, resumingConsumer } from "../support/stream-recorder";
import {
  type ConsumerComparison,
  compareConsumer,
  compareLogs,
  type HostLog,
  isClean,
  type LogComparison,
} from "./compare-logs";
import type { Scenario } from "./scenarios";

// One iteration of the fault suite: a relay with fresh state (so every PDS host is a new host
// to it), the hosts crawled, a consumer attached from cursor 0, the scenario's trigger, a
// kill -9 of wrangler's whole process group at a seeded moment, writes going on while it is
// down, a restart on the same state, and then the relay's log from cursor 0 compared with what
// every host sequenced.

const SUBSCRIBE = "/xrpc/com.atproto.sync.subscribeRepos";
export const ADMIN_TOKEN = "fault-suite-admin";

export const BASE_VARS: Record<string, string> = {
  ADMIN_TOKEN,
  HOST_REPORT_INTERVAL_SECONDS: "3",
  NEW_HOST_EVENTS_PER_SECOND: "100000",
  NEW_HOST_MAX_ACCOUNTS: "100000",
};

/** What a scenario's trigger can do. */
export type FaultContext = {
  hostnames: string[];
  random: () => number;
  pick<T>(items: T[]): T;
  /** Resolves when the relay has subscribed to every host (and the subscription is live). */
  whenConnected(): Promise<void>;
  /** Starts the writes on the PDS hosts (once; later calls do nothing). */
  startWrites(): void;
  relayHead(): Promise<number>;
  whenRelayHead(atLeast: number): Promise<void>;
  pin(hostname: string, pinned: boolean): Promise<void>;
  addConsumer(cursor: number): void;
};

export type FaultOutcome = {
  scenario: string;
  seed: number;
  killDelayMs: number;
  downMs: number;
  /** The relay's head when it was killed, as last seen. */
  headAtKill: number;
  /** Host heads when the relay first subscribed (events after these are owed). */
  floors: Record<string, number>;
  comparison: LogComparison;
  consumers: (ConsumerComparison & { from: number; reconnects: number })[];
  /** "repo continuity mismatch" flags the restarted relay raised on healthy accounts. */
  continuityFlags: string[];
  /** How the restarted relay resubscribed to each host. */
  reconnectedWith: string[];
  /** What the relay said it dropped, refused or failed on (both lifetimes, first few). */
  dropLines: string[];
  /** The restarted relay's log at the end: oldest retained seq and sealed segments. */
  logState: { oldestSeq?: number; segments?: number };
};

export function outcomeIsClean(o: FaultOutcome): boolean {
  return (
    isClean(o.comparison) &&
    o.continuityFlags.length === 0 &&
    o.consumers.every(
      (c) => c.missingSeqs === "" && c.duplicatedSeqs === "" && c.mismatched.length === 0,
    )
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(what: string, ok: () => Promise<boolean> | boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(100);
  }
}

/**
 * wrangler dev itself (its esbuild) now and then dies while starting on a loaded two-core
 * machine; that is not the relay's fault, so a start is tried twice.
 */
async function startRelayOnce(options: RelayOptions): Promise<RelayProcess> {
  try {
    return await startRelay(options);
  } catch (err) {
    if (!String(err).includes("wrangler dev exited")) throw err;
    return startRelay(options);
  }
}

async function health(relay: RelayProcess): Promise<number> {
  const res = await fetch(`${relay.url}/xrpc/_health`);
  return ((await res.json()) as { seq?: number }).seq ?? 0;
}

async function logState(relay: RelayProcess): Promise<FaultOutcome["logState"]> {
  const res = await fetch(`${relay.url}/xrpc/_health`);
  const { oldestSeq, segments } = (await res.json()) as FaultOutcome["logState"];
  return { oldestSeq, segments };
}

export async function readHostLog(host: PdsHost): Promise<HostLog["events"]> {
  const head = await pdsHead(host);
  return readLog(`${host.url.replace("http", "ws")}${SUBSCRIBE}`, 0, head, 60_000, {
    [TEST_READER_HEADER]: "1",
  });
}

/**
 * Relay log lines that say an event was not sequenced, or a host stopped being read: debugging
 * lines by `msg`, operator lines (src/ops-log.ts) by `event` and what they contain.
 */
const DROP_MESSAGES = [
  "sequencer append failed; will retry",
  "frame handling failed",
  "cursor lookup failed; will retry",
];

function relayLines(output: string, message: string): string[] {
  return output.split("\n").filter((line) => line.includes(`"msg":"${message}"`));
}

function dropLines(output: string): string[] {
  return output
    .split("\n")
    .filter(
      (line) =>
        DROP_MESSAGES.some((message) => line.includes(`"msg":"${message}"`)) ||
        line.includes('"event":"event_dropped"') ||
        /"event":"host_status".*"to":"(throttled|offline)"/.test(line),
    );
}

export async function runFaultIteration(options: {
  network: PdsNetwork;
  watches: Map<string, ConnectionWatch>;
  scenario: Scenario;
  seed: number;
  log?: (line: string) => void;
}): Promise<FaultOutcome> {
  const { network, watches, scenario, seed } = options;
  const log = options.log ?? (() => undefined);
  const random = seededRandom(seed);
  const hosts = network.hosts;
  for (const watch of watches.values()) watch.reset();
  const vars = { ...BASE_VARS, ...scenario.vars };
  let relay = await startRelayOnce({ plcUrl: network.plcUrl, logLevel: "log", vars });
  const persistDir = relay.persistDir;
  const consumers: { from: number; consumer: ResumingConsumer }[] = [];
  const addConsumer = (cursor: number) =>
    consumers.push({
      from: cursor,
      consumer: resumingConsumer(() => `${relay.wsUrl}${SUBSCRIBE}`, cursor),
    });
  const writesStop = new AbortController();
  let writes: Promise<unknown> | undefined;
  const startWrites = () => {
    writes ??= runActivity(network, {
      seed,
      signal: writesStop.signal,
      eventsPerSecond: 15,
    });
  };
  let lastHead = 0;
  const relayHead = async () => {
    lastHead = await health(relay);
    return lastHead;
  };
  const ctx: FaultContext = {
    hostnames: hosts.map((h) => h.hostname),
    random,
    pick: (items) => items[Math.floor(random() * items.length)] as (typeof items)[number],
    async whenConnected() {
      await until(
        "the relay to subscribe to every host",
        () => [...watches.values()].every((w) => w.floor() !== undefined),
        30_000,
      );
      // the PDS starts the subscription's live tail just after the upgrade
      await sleep(200);
    },
    startWrites,
    relayHead,
    async whenRelayHead(atLeast) {
      await until(`relay head ${atLeast}`, async () => (await relayHead()) >= atLeast, 60_000);
    },
    async pin(hostname, pinned) {
      try {
        await fetch(`${relay.url}/admin/hosts/pin`, {
          method: "POST",
          headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
          body: JSON.stringify({ hostname, pinned }),
        });
      } catch {
        // the relay was killed while answering
      }
    },
    addConsumer,
  };
  const killDelayMs = Math.floor(
    scenario.killWindowMs[0] + random() * (scenario.killWindowMs[1] - scenario.killWindowMs[0]),
  );
  const downMs = Math.floor(500 + random() * 2500);
  let beforeKill = "";
  try {
    addConsumer(0);
    for (const host of hosts) {
      const res = await requestCrawl(relay.url, host.hostname);
      if (!res.ok)
        throw new Error(`requestCrawl ${host.hostname}: ${res.status} ${await res.text()}`);
    }
    await scenario.trigger(ctx);
    await sleep(killDelayMs);
    const headAtKill = await relayHead().catch(() => lastHead);
    await relay.kill();
    beforeKill = relay.output();
    log(
      `${scenario.name} seed ${seed}: killed ${killDelayMs} ms after the trigger at head ${headAtKill}`,
    );
    // the hosts keep writing while the relay is down
    startWrites();
    await sleep(downMs);
    relay = await startRelayOnce({ plcUrl: network.plcUrl, logLevel: "log", vars, persistDir });
    // a PDS pings its crawlers when it writes after a quiet spell
    for (const host of hosts) await requestCrawl(relay.url, host.hostname).catch(() => undefined);
    await sleep(2000);
    writesStop.abort();
    await writes;

    // quiet: every host's events reached the relay, or its head stopped moving
    const floors: Record<string, number> = {};
    for (const [hostname, watch] of watches) {
      const floor = watch.floor();
      if (floor === undefined) throw new Error(`the relay never subscribed to ${hostname}`);
      floors[hostname] = floor;
    }
    const hostLogs: HostLog[] = [];
    for (const host of hosts)
      hostLogs.push({
        hostname: host.hostname,
        events: await readHostLog(host),
        floor: floors[host.hostname] as number,
      });
    let comparison: LogComparison | undefined;
    let stableSince = Date.now();
    let previousHead = -1;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const head = await relayHead();
      if (head !== previousHead) stableSince = Date.now();
      previousHead = head;
      const relayLog = head > 0 ? await readLog(`${relay.wsUrl}${SUBSCRIBE}`, 0, head, 30_000) : [];
      comparison = compareLogs(hostLogs, relayLog, { retainedOnly: scenario.retainedOnly });
      if (comparison.missing.length === 0) break;
      // a tail may still come: an ingester's watchdog reconnects a silent host within 30 s
      const patience = comparison.missing.some((m) => m.tailOnly) ? 35_000 : 8_000;
      if (Date.now() - stableSince > patience || Date.now() > deadline) break;
      await sleep(1000);
    }
    const head = await relayHead();
    const finalLog = head > 0 ? await readLog(`${relay.wsUrl}${SUBSCRIBE}`, 0, head, 30_000) : [];
    comparison = compareLogs(hostLogs, finalLog, { retainedOnly: scenario.retainedOnly });
    const firstRetained = (finalLog.find((e) => e.seq !== null)?.seq ?? 1) - 1;
    const consumerResults = [];
    for (const { from, consumer } of consumers) {
      await until(
        "a consumer to reach the head",
        () => (consumer.lastSeq() ?? 0) >= head,
        30_000,
      ).catch(() => undefined);
      consumerResults.push({
        from,
        reconnects: consumer.reconnects,
        ...compareConsumer(consumer.events, finalLog, Math.max(from, firstRetained)),
      });
    }
    const after = relay.output();
    return {
      scenario: scenario.name,
      seed,
      killDelayMs,
      downMs,
      headAtKill,
      floors,
      comparison,
      consumers: consumerResults,
      continuityFlags: relayLines(after, "repo continuity mismatch").slice(0, 5),
      reconnectedWith: relayLines(after, "connected").map((l) => l.slice(l.indexOf("{"))),
      dropLines: [beforeKill, after]
        .flatMap((output) => dropLines(output))
        .map((l) => l.slice(l.indexOf("{")))
        .slice(0, 8),
      logState: await logState(relay),
    };
  } finally {
    writesStop.abort();
    await writes?.catch(() => undefined);
    for (const { consumer } of consumers) consumer.close();
    await relay.kill();
    rmSync(persistDir, { recursive: true, force: true });
  }
}
