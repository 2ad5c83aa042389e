import { readdirSync, readFileSync, readlinkSync } from "node:fs";

// CPU time of a `wrangler dev` process group's workerd processes, from /proc. wrangler dev runs
// two: the runtime that holds the Worker and its Durable Objects, and wrangler's own proxy in
// front of it (listening on the port given to wrangler), which every request and every
// WebSocket message crosses once more. Production has no such proxy, so the two are counted
// apart: a Durable Object's CPU is the runtime's.

export type CpuSeconds = { user: number; system: number };
export type WorkerdCpu = { runtime: CpuSeconds; proxy: CpuSeconds };

const TICKS_PER_SECOND = 100;

type GroupProcess = { pid: number; command: string; cpu: CpuSeconds };

/** The processes of a process group, with their CPU seconds so far (/proc/<pid>/stat). */
function groupProcesses(groupPid: number): GroupProcess[] {
  const out: GroupProcess[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const command = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      // fields after the command: state, ppid, pgrp, …; utime and stime are the 12th and 13th
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== groupPid) continue;
      const cpu = {
        user: Number(fields[11]) / TICKS_PER_SECOND,
        system: Number(fields[12]) / TICKS_PER_SECOND,
      };
      out.push({ pid: Number(entry), command, cpu });
    } catch {
      // the process ended while we read it
    }
  }
  return out;
}

/**
 * A thread's seconds on a core and seconds runnable but waiting for one so far
 * (/proc/<pid>/task/<tid>/schedstat, in ns). Throws when the thread is gone or /proc has none.
 */
export function threadTimes(
  pid: number | "self",
  tid: number | string,
): { run: number; wait: number } {
  const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8")
    .split(" ")
    .map(Number);
  return { run: (run ?? 0) / 1e9, wait: (wait ?? 0) / 1e9 };
}

/** The pids of a process group (bench/cpu-placement.ts pins them). */
export function groupPids(groupPid: number): number[] {
  return groupProcesses(groupPid).map((p) => p.pid);
}

function workerdPids(groupPid: number): number[] {
  return groupProcesses(groupPid)
    .filter((p) => p.command.startsWith("workerd"))
    .map((p) => p.pid);
}

function isProxy(pid: number, proxyPort: number): boolean {
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  return cmdline.includes(`entry=127.0.0.1:${proxyPort}\0`);
}

/** CPU seconds of the group's workerd processes, runtime and wrangler's proxy apart. */
export function workerdCpu(groupPid: number, proxyPort: number): WorkerdCpu {
  const out: WorkerdCpu = { runtime: { user: 0, system: 0 }, proxy: { user: 0, system: 0 } };
  for (const p of groupProcesses(groupPid)) {
    if (!p.command.startsWith("workerd")) continue;
    let proxy: boolean;
    try {
      proxy = isProxy(p.pid, proxyPort);
    } catch {
      continue; // the process ended while we read it
    }
    const into = proxy ? out.proxy : out.runtime;
    into.user += p.cpu.user;
    into.system += p.cpu.system;
  }
  return out;
}

/**
 * CPU seconds of the group's other processes: wrangler's own Node process (and esbuild). Under
 * `wrangler dev` its inspector proxy forwards every DevTools event of the runtime to that Node
 * process as an HTTP request, four per outbound fetch (Network.requestWillBeSent …
 * loadingFinished), whatever the log level: dev tooling that competes for the cores and that
 * production does not run. Under test/support/quiet-dev.ts (no inspector) the Node process is
 * that script's, and the proxy workerd is still there.
 */
export function wranglerToolingCpu(groupPid: number): CpuSeconds {
  const out: CpuSeconds = { user: 0, system: 0 };
  for (const p of groupProcesses(groupPid)) {
    if (p.command.startsWith("workerd")) continue;
    out.user += p.cpu.user;
    out.system += p.cpu.system;
  }
  return out;
}

/** The pids of the group's runtime workerd processes (wrangler's proxy left out). */
export function runtimePids(groupPid: number, proxyPort: number): number[] {
  return workerdPids(groupPid).filter((pid) => {
    try {
      return !isProxy(pid, proxyPort);
    } catch {
      return false; // the process ended while we read it
    }
  });
}

/** The pid of the group's runtime workerd (not wrangler's proxy), for perf and strace. */
export function runtimePid(groupPid: number, proxyPort: number): number {
  const pid = runtimePids(groupPid, proxyPort)[0];
  if (pid === undefined) throw new Error(`no runtime workerd in process group ${groupPid}`);
  return pid;
}

export function cpuSince(before: WorkerdCpu, after: WorkerdCpu): WorkerdCpu {
  const d = (a: CpuSeconds, b: CpuSeconds) => ({
    user: b.user - a.user,
    system: b.system - a.system,
  });
  return { runtime: d(before.runtime, after.runtime), proxy: d(before.proxy, after.proxy) };
}

export const total = (c: CpuSeconds): number => c.user + c.system;

/**
 * The ports the runtime itself listens on (behind wrangler's proxy; one of them is the Worker's,
 * the others the inspector's and debug port), so a client can reach the Worker without
 * crossing the proxy. Read from the runtime's listening sockets in /proc.
 */
function runtimePorts(groupPid: number, proxyPort: number): number[] {
  const ports: number[] = [];
  const listening = new Map<string, number>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] !== "0A") continue; // LISTEN
      const port = Number.parseInt((cols[1] ?? "").split(":")[1] ?? "", 16);
      if (cols[9]) listening.set(cols[9], port);
    }
  }
  for (const pid of workerdPids(groupPid)) {
    if (isProxy(pid, proxyPort)) continue;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let link = "";
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      const port = inode ? listening.get(inode) : undefined;
      if (port !== undefined) ports.push(port);
    }
  }
  return ports;
}

/** The runtime's port that serves the Worker: the one of runtimePorts that answers `path` with 200. */
export async function runtimeWorkerPort(
  groupPid: number,
  proxyPort: number,
  path: string,
): Promise<number> {
  for (const port of runtimePorts(groupPid, proxyPort)) {
    const ok = await fetch(`http://127.0.0.1:${port}${path}`, {
      signal: AbortSignal.timeout(2_000),
    })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return port;
  }
  throw new Error("found no port of the runtime that serves the Worker");
}
