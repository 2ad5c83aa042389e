// `npm start`: freehose under `wrangler dev` (local Durable Objects and R2) with something real
// to relay: a PLC directory and two reference PDS hosts on loopback, whose accounts keep posting,
// replying, liking, following, deleting, changing handles and deactivating. The terminal shows
// what flows. `npm start -- --hosts pds1.example.com,pds2.example.com` (or FREEHOSE_HOSTS=...)
// crawls real hosts instead, on a machine with internet. Ctrl-C stops everything.
import WebSocket from "ws";
import { decodeFrame, frameDid, isSequencedFrame } from "../src/protocol/frame";
import { runActivity } from "../test/support/activity";
import { type PdsNetwork, startPdsNetwork } from "../test/support/pds-network";
import { type RelayProcess, requestCrawl, startRelay } from "../test/support/relay-process";

const REFRESH_MS = 3_000;

function parseHosts(): string[] | null {
  const i = process.argv.indexOf("--hosts");
  const raw = i >= 0 ? process.argv[i + 1] : process.env.FREEHOSE_HOSTS;
  if (!raw) return null;
  return raw
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean);
}

function portArg(): number | undefined {
  const i = process.argv.indexOf("--port");
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
}

async function main(): Promise<void> {
  const realHosts = parseHosts();
  let network: PdsNetwork | null = null;
  let relay: RelayProcess | null = null;
  const controller = new AbortController();
  let stopping = false;

  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping…");
    controller.abort();
    await relay?.stop();
    await network?.close();
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown(0));
  process.on("SIGTERM", () => void shutdown(0));

  const hostOfDid = new Map<string, string>();
  let hostnames: string[];
  if (realHosts) {
    console.log(`crawling real hosts: ${realHosts.join(", ")}`);
    relay = await startRelay({
      plcUrl: "https://plc.directory",
      port: portArg(),
      vars: { DEV_MODE: "false" },
    });
    hostnames = realHosts;
  } else {
    console.log("starting a PLC directory and two reference PDS hosts on loopback…");
    network = await startPdsNetwork({ pdsCount: 2, accountsPerPds: 4 });
    for (const host of network.hosts)
      for (const a of host.accounts) hostOfDid.set(a.did, host.hostname);
    console.log("starting freehose under wrangler dev (local Durable Objects and R2)…");
    relay = await startRelay({ plcUrl: network.plcUrl, port: portArg() });
    hostnames = network.hosts.map((h) => h.hostname);
  }
  for (const hostname of hostnames) {
    const res = await requestCrawl(relay.url, hostname);
    console.log(`requestCrawl ${hostname}: ${res.status} ${res.ok ? "" : await res.text()}`);
  }

  // watch the relay's own output, as any consumer would
  const perHost = new Map<string, number>();
  let lastSeq = 0;
  let total = 0;
  const consumer = new WebSocket(`${relay.wsUrl}/xrpc/com.atproto.sync.subscribeRepos`);
  consumer.on("message", (data: Buffer) => {
    const frame = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (!isSequencedFrame(frame)) return;
    total++;
    lastSeq = frame.body.seq;
    const host = hostOfDid.get(frameDid(frame)) ?? "other";
    perHost.set(host, (perHost.get(host) ?? 0) + 1);
  });

  if (network) {
    const net = network;
    void (async () => {
      for (let round = 1; !controller.signal.aborted; round++) {
        await runActivity(net, {
          actions: 50,
          seed: round,
          pauseMs: 120,
          rare: true,
          signal: controller.signal,
        }).catch((err) => {
          if (!controller.signal.aborted) console.error(`activity failed: ${String(err)}`);
        });
      }
    })();
  }

  let previous = new Map<string, number>();
  const dashboard = setInterval(async () => {
    if (!relay) return;
    let health: { seq?: number; segments?: number } = {};
    try {
      health = (await (await fetch(`${relay.url}/xrpc/_health`)).json()) as typeof health;
    } catch {
      // relay restarting
    }
    const lines = [
      "",
      `freehose ${relay.url}   seq ${health.seq ?? "?"}   sealed segments ${health.segments ?? 0}   events seen ${total} (last ${lastSeq})`,
      `subscribe: ${relay.wsUrl}/xrpc/com.atproto.sync.subscribeRepos?cursor=0`,
    ];
    for (const hostname of [...hostnames, ...(perHost.has("other") ? ["other"] : [])]) {
      const count = perHost.get(hostname) ?? 0;
      const rate = ((count - (previous.get(hostname) ?? 0)) * 1000) / REFRESH_MS;
      lines.push(
        `  ${hostname.padEnd(28)} ${rate.toFixed(1).padStart(7)} events/s   ${String(count).padStart(7)} total`,
      );
    }
    lines.push("(Ctrl-C to stop)");
    console.log(lines.join("\n"));
    previous = new Map(perHost);
  }, REFRESH_MS);
  controller.signal.addEventListener("abort", () => clearInterval(dashboard));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
