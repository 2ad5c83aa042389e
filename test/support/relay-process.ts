import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// freehose under `wrangler dev` (local workerd, local Durable Objects and R2), as a child
// process with its state in a directory that outlives it, so a test can stop and restart the
// relay on the same data.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");
const QUIET_DEV = join(ROOT, "test", "support", "quiet-dev.ts");

export type RelayOptions = {
  /** PLC_URL of the relay (a bench worker of its own needs none). */
  plcUrl?: string;
  /** Another Worker than the relay: its wrangler config, or its entry with the relay's config. */
  config?: string;
  entry?: string;
  /** Whether the Worker answers yet (default: GET /xrpc/_health is ok). */
  ready?: (url: string) => Promise<boolean>;
  persistDir?: string;
  port?: number;
  vars?: Record<string, string>;
  /** Print wrangler's output (npm start does; tests keep it for failure messages). */
  echo?: boolean;
  /** wrangler's log level; "log" shows the relay's own JSON log lines. */
  logLevel?: "error" | "warn" | "info" | "log" | "debug";
  /**
   * false: run the relay through wrangler's API without the inspector (test/support/quiet-dev.ts)
   * instead of `wrangler dev`, whose DevTools relay costs CPU per outbound fetch of the runtime
   * (docs/benchmarks.md, "Without wrangler's DevTools"). Default true: `wrangler dev`.
   */
  devTools?: boolean;
  /**
   * With devTools false only. Default false: the relay's outbound fetches (DID look-ups, upstream
   * WebSockets) go straight to the network, as in production. true keeps the Worker miniflare
   * puts in front of them (test/support/quiet-dev.ts says why it is taken out).
   */
  outboundWorker?: boolean;
};

export type RelayProcess = {
  url: string;
  wsUrl: string;
  port: number;
  persistDir: string;
  output: () => string;
  /**
   * Process id of `wrangler dev` (or of quiet-dev.ts), leader of its own process group (workerd
   * is in it).
   */
  pid: number;
  stop(): Promise<void>;
  /**
   * kill -9 of the whole process group (wrangler, esbuild, workerd) at once, as a crash or an
   * eviction does it: nothing gets to flush. Resolves when wrangler has exited.
   */
  kill(): Promise<void>;
};

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}

/** What the relay is launched with (quiet-dev.ts takes it as one JSON argument). */
export type LaunchArgs = {
  config?: string;
  entry?: string;
  port: number;
  persistDir: string;
  vars: Record<string, string>;
  logLevel: NonNullable<RelayOptions["logLevel"]>;
  /** quiet-dev.ts only: keep miniflare's outbound Worker (RelayOptions.outboundWorker). */
  outboundWorker?: boolean;
};

/** `wrangler dev`, or quiet-dev.ts (no inspector): detached, so each leads its process group. */
async function spawnLauncher(quiet: boolean, launch: LaunchArgs): Promise<ChildProcess> {
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", CI: "true" };
  const spawnOptions = {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"] as ("ignore" | "pipe")[],
    detached: true,
  };
  if (quiet)
    return spawn(
      process.execPath,
      ["--import", "tsx", QUIET_DEV, JSON.stringify(launch)],
      spawnOptions,
    );
  const args = [
    "dev",
    ...(launch.entry ? [launch.entry] : []),
    ...(launch.config ? ["--config", launch.config] : []),
    "--port",
    String(launch.port),
    "--ip",
    "127.0.0.1",
    "--inspector-port",
    String(await freePort()),
    "--persist-to",
    launch.persistDir,
    "--show-interactive-dev-session=false",
    "--log-level",
    launch.logLevel,
  ];
  for (const [k, v] of Object.entries(launch.vars)) args.push("--var", `${k}:${v}`);
  return spawn(WRANGLER, args, spawnOptions);
}

export async function startRelay(options: RelayOptions): Promise<RelayProcess> {
  const port = options.port ?? (await freePort());
  const persistDir = options.persistDir ?? mkdtempSync(join(tmpdir(), "freehose-"));
  const vars: Record<string, string> = {
    DEV_MODE: "true",
    // tests crawl from one client (no CF-Connecting-IP under wrangler dev)
    REQUEST_CRAWL_PER_IP_PER_MINUTE: "100000",
    ...(options.plcUrl ? { PLC_URL: options.plcUrl } : {}),
    ...options.vars,
  };
  const logLevel = options.logLevel ?? "warn";
  const quiet = options.devTools === false;
  const child = await spawnLauncher(quiet, {
    ...(options.config ? { config: options.config } : {}),
    ...(options.entry ? { entry: options.entry } : {}),
    port,
    persistDir,
    vars,
    logLevel,
    ...(options.outboundWorker ? { outboundWorker: true } : {}),
  });
  const launcher = quiet ? "quiet-dev.ts" : "wrangler dev";
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
    if (options.echo) process.stdout.write(chunk);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }, 5_000);
    await exited;
    clearTimeout(timer);
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
  };
  const ready =
    options.ready ??
    ((base: string) =>
      fetch(`${base}/xrpc/_health`).then(
        (res) => res.ok,
        () => false,
      ));
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`${launcher} exited (${child.exitCode}):\n${output.slice(-3000)}`);
    if (await ready(url)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${launcher} did not become healthy:\n${output.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    persistDir,
    output: () => output,
    pid: child.pid as number,
    stop,
    kill,
  };
}

/**
 * Resident memory (bytes) of every workerd process in a relay's process group, read from
 * /proc (Linux only; 0 where /proc is absent). workerd holds the Durable Objects, so this is
 * the memory a long-running relay would grow.
 */
export function workerdRssBytes(relay: Pick<RelayProcess, "pid">): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // the command sits in parentheses and may contain spaces: fields follow the last ")"
      const command = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const processGroup = Number(fields[2]);
      if (processGroup !== relay.pid || !command.startsWith("workerd")) continue;
      const rss = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${entry}/status`, "utf8"));
      if (rss) total += Number(rss[1]) * 1024;
    } catch {
      // the process ended while we read it
    }
  }
  return total;
}

export async function requestCrawl(
  relayUrl: string,
  hostname: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${relayUrl}/xrpc/com.atproto.sync.requestCrawl`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ hostname }),
  });
}
