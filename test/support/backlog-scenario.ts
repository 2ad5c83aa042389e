import WebSocket from "ws";
import { decodeFrame } from "../../src/protocol/frame";
import { type RelayOptions, type RelayProcess, requestCrawl, startRelay } from "./relay-process";
import { ScriptedPds, ScriptedPlc } from "./scripted-pds";
import { waitUntil } from "./wait";

// Catch-up after a restart: every host wrote while the relay was down, and all of them send
// their backlog at once when it comes back. Hosts are scripted (real signed commits, real
// WebSockets, many accounts each, so keys are cold and every account's DID is resolved once);
// the relay is `wrangler dev` (or, with devTools: false, the same without wrangler's inspector),
// stopped and started again on the same state. Used by the backlog benchmark (rates) and the
// catch-up integration test (correctness).

export type BacklogOutcome = {
  /** Events sequenced per second, from the relay answering again to the last one. */
  rate: number;
  /** Upstream connections beyond one per host. */
  reconnects: number;
  lost: number;
  duplicated: number;
  /** Commits relayed out of their account's rev order. */
  outOfOrder: number;
  /** Relay seqs that are not contiguous from the first. */
  seqGaps: number;
  complete: boolean;
  /** What the hosts wrote while the relay was down, each host's frames in order. */
  backlog: { hostname: string; frames: Uint8Array[] }[];
  /** The DID documents the PLC served, as JSON text. */
  documents: Map<string, string>;
};

/** Told when the drain starts (the restarted relay answers) and when its last event is sequenced. */
export type DrainProbe = {
  start(relay: RelayProcess): void | Promise<void>;
  end(relay: RelayProcess): void | Promise<void>;
};

export async function runBacklog(
  hostCount: number,
  totalEvents: number,
  totalAccounts: number,
  probe?: DrainProbe,
  plcDelayMs = 0,
  launch: Pick<RelayOptions, "devTools" | "outboundWorker"> = {},
): Promise<BacklogOutcome> {
  const plc = new ScriptedPlc(plcDelayMs);
  await plc.start();
  const hosts: ScriptedPds[] = [];
  const perHost = Math.ceil(totalEvents / hostCount);
  const accountsPerHost = Math.max(1, Math.floor(totalAccounts / hostCount));
  const backlog: ((seq: number) => Uint8Array)[][] = [];
  const firstEvents: ((seq: number) => Uint8Array)[] = [];
  for (let h = 0; h < hostCount; h++) {
    const host = new ScriptedPds(plc);
    await host.start();
    const accounts = [];
    for (let a = 0; a < accountsPerHost; a++) accounts.push(await host.addAccount());
    hosts.push(host);
    // one event per host before the restart, so every host has a cursor at the relay
    firstEvents.push(await host.commitFrame(accounts[0]!));
    const frames: ((seq: number) => Uint8Array)[] = [];
    for (let i = 0; i < perHost; i++)
      frames.push(await host.commitFrame(accounts[i % accounts.length]!));
    backlog.push(frames);
  }
  const vars = {
    NEW_HOST_EVENTS_PER_SECOND: "1000000",
    NEW_HOST_MAX_ACCOUNTS: "1000000",
  };
  let relay = await startRelay({
    ...launch,
    plcUrl: plc.url,
    logLevel: process.env.FREEHOSE_BENCH_LOG === "1" ? "log" : "warn",
    vars,
  });
  try {
    for (const host of hosts) {
      const res = await requestCrawl(relay.url, host.hostname);
      if (!res.ok) throw new Error(`requestCrawl ${host.hostname}: ${res.status}`);
    }
    // a new host is read from its current offset: its first event is written after the crawl
    for (const [h, host] of hosts.entries()) host.push(firstEvents[h]!);
    if (!(await waitForHead(relay.url, hostCount)))
      throw new Error("the hosts' first events were not sequenced");
    const firstHead = await head(relay.url);
    await relay.stop();
    // the relay is down: every host writes its backlog
    for (let h = 0; h < hostCount; h++) for (const make of backlog[h]!) hosts[h]!.push(make);
    let reconnects = 0;
    for (const host of hosts) host.server.on("upgrade", () => reconnects++);
    relay = await startRelay({
      ...launch,
      plcUrl: plc.url,
      logLevel: process.env.FREEHOSE_BENCH_LOG === "1" ? "log" : "warn",
      vars,
      persistDir: relay.persistDir,
    });
    // timed from the moment the relay answers; each host then pings it, as a PDS does on its
    // first write after a quiet spell (otherwise its ingester reconnects at the next watchdog
    // tick, up to 30 s later)
    await probe?.start(relay);
    const startMs = Date.now();
    await Promise.all(hosts.map((host) => requestCrawl(relay.url, host.hostname, UNCOMPRESSED)));
    const expected = firstHead + hostCount * perHost;
    const done = await waitForHead(relay.url, expected, 300_000);
    // until the last event was sequenced, by the relay's clock (the same machine's): the polls
    // only notice it up to a period later
    const { headTimeUs } = await logHead(relay.url);
    const seconds = Math.max(0.001, (headTimeUs / 1000 - startMs) / 1000);
    await probe?.end(relay);
    if (process.env.FREEHOSE_BENCH_LOG === "1") summariseLog(relay.output());
    const check = await checkRelayLog(relay.wsUrl, hosts);
    return {
      rate: (hostCount * perHost) / seconds,
      reconnects: reconnects - hostCount,
      ...check,
      complete: done,
      // each host's first frame was sequenced before the restart
      backlog: hosts.map((host) => ({ hostname: host.hostname, frames: host.frames.slice(1) })),
      documents: new Map([...plc.docs].map(([did, doc]) => [did, JSON.stringify(doc)])),
    };
  } finally {
    await relay.stop();
    for (const h of hosts) await h.close();
    await plc.close();
  }
}

/**
 * The drain's own requests to the relay ask for no compression: miniflare mimics Cloudflare's
 * edge, which gzips JSON answers for clients that accept it, inside the runtime, on the thread
 * the drain is measured on (~0.2 ms an answer, mostly deflate's set-up); on Cloudflare that
 * happens in front of the Worker, not in it.
 */
const UNCOMPRESSED = { "Accept-Encoding": "identity" };

async function logHead(url: string): Promise<{ seq: number; headTimeUs: number }> {
  const res = await fetch(`${url}/xrpc/_health`, { headers: UNCOMPRESSED });
  const body = (await res.json()) as { seq?: number; headTimeUs?: number };
  return { seq: body.seq ?? 0, headTimeUs: body.headTimeUs ?? 0 };
}

async function head(url: string): Promise<number> {
  return (await logHead(url)).seq;
}

async function waitForHead(url: string, atLeast: number, timeoutMs = 60_000): Promise<boolean> {
  let current = 0;
  const poll = setInterval(() => {
    void head(url).then(
      (h) => {
        current = h;
      },
      () => {},
    );
  }, 250); // each poll costs the relay's thread ~2 ms; the drain's end is the head's own time
  try {
    return await waitUntil(() => current >= atLeast && current > 0, timeoutMs);
  } finally {
    clearInterval(poll);
  }
}

/** Reads the relay's whole log and compares it with every commit the hosts wrote. */
export async function checkRelayLog(
  wsUrl: string,
  hosts: ScriptedPds[],
): Promise<Pick<BacklogOutcome, "lost" | "duplicated" | "outOfOrder" | "seqGaps">> {
  const written = new Set<string>();
  for (const host of hosts) {
    for (const frame of host.frames) {
      const decoded = decodeFrame(frame);
      if (decoded.kind === "commit") written.add(`${decoded.body.repo} ${decoded.body.rev}`);
    }
  }
  const seen = new Map<string, number>();
  const lastRev = new Map<string, string>();
  let outOfOrder = 0;
  let seqGaps = 0;
  let previousSeq: number | null = null;
  const ws = new WebSocket(`${wsUrl}/xrpc/com.atproto.sync.subscribeRepos?cursor=0`);
  let last = performance.now();
  ws.on("message", (data: Buffer) => {
    last = performance.now();
    const frame = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (!("seq" in frame.body)) return;
    const seq = frame.body.seq as number;
    if (previousSeq !== null && seq !== previousSeq + 1) seqGaps++;
    previousSeq = seq;
    if (frame.kind !== "commit") return;
    const { repo, rev } = frame.body;
    const key = `${repo} ${rev}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    if ((lastRev.get(repo) ?? "") >= rev) outOfOrder++;
    lastRev.set(repo, rev);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  await waitUntil(() => performance.now() - last > 1_500, 120_000);
  ws.close();
  let lost = 0;
  for (const key of written) if (!seen.has(key)) lost++;
  let duplicated = 0;
  for (const n of seen.values()) if (n > 1) duplicated += n - 1;
  return { lost, duplicated, outOfOrder, seqGaps };
}

/** With FREEHOSE_BENCH_LOG=1: how often each kind of relay log line appeared. */
function summariseLog(output: string): void {
  const counts = new Map<string, number>();
  for (const match of output.matchAll(/"msg":"([^"]+)"/g))
    counts.set(match[1]!, (counts.get(match[1]!) ?? 0) + 1);
  console.log(JSON.stringify(Object.fromEntries(counts)));
  const lines = output.split("\n").filter((l) => !l.includes("_health"));
  console.log(lines.slice(-40).join("\n"));
}
