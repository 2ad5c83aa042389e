import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// Where the backlog bench's processes run. This VM's two vCPUs are not alike: the same
// libsecp256k1 verify loop ran at ~310 µs per verify pinned to CPU 0 and ~220 µs pinned to CPU 1
// (2026-11-29 18:20, idle machine), while a plain arithmetic loop ran at the same speed on both
// (whatever shares vCPU 0's physical core evicts the verify's tables). Unpinned, each process
// landed on one or the other, so one-host drains of the same backlog and the validation
// reference each came out in two speeds ~40 % apart. The bench therefore gives the relay's
// JavaScript thread and the validation reference the same core, and puts everything else (the
// hosts, the PLC, wrangler's Node and proxy, the runtime's other threads) on the other one:
// "one core" for both sides of the pipeline-efficiency ratio.

const TASKSET = "/usr/bin/taskset";
const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

/** BACKLOG_CPU: the core of the relay's JavaScript thread and of the reference. */
export const MEASURED_CPU = Number(process.env.BACKLOG_CPU ?? 1);
/** Everything else. */
export const OTHER_CPU = MEASURED_CPU === 0 ? 1 : 0;

export function canPin(): boolean {
  return existsSync(TASKSET) && process.env.BACKLOG_PIN !== "0";
}

function taskset(args: string[]): void {
  try {
    execFileSync(TASKSET, args, { stdio: "ignore" });
  } catch {
    // the process or thread ended meanwhile
  }
}

/** Every thread of process `pid` on `cpus` (a taskset CPU list). */
function pinProcess(pid: number, cpus: string | number): void {
  taskset(["-a", "-p", "-c", String(cpus), String(pid)]);
}

/** Thread `tid` alone on `cpu` (a process's main thread has its pid for tid). */
function pinThread(tid: number, cpu: number): void {
  taskset(["-p", "-c", String(cpu), String(tid)]);
}

/** This process (the bench: scripted hosts and PLC), every thread, on the other core. */
export function pinBench(): void {
  if (canPin()) pinProcess(process.pid, OTHER_CPU);
}

/**
 * The relay's process group on the other core, then its runtime's main thread (the one that
 * runs every object's JavaScript under `wrangler dev`) alone on the measured core.
 */
export function pinRelay(groupPids: number[], runtimePid: number): void {
  if (!canPin()) return;
  for (const pid of groupPids) pinProcess(pid, OTHER_CPU);
  pinThread(runtimePid, MEASURED_CPU);
}

/**
 * This process, every thread, on the measured core alone (true) or on both again (false): the
 * validation bench's "on one core" for ours and the reference alike (Node's WebCrypto verifies
 * P-256 on its thread pool, and V8 collects garbage on helper threads, so unpinned either side
 * may use a second core). Returns what it did, for the report.
 */
export function pinThisProcess(alone: boolean): string {
  if (!canPin()) return "not pinned (no taskset, or BACKLOG_PIN=0)";
  const cpus = alone ? String(MEASURED_CPU) : `0-${availableParallelism() - 1}`;
  pinProcess(process.pid, cpus);
  return alone ? `every thread on CPU ${MEASURED_CPU}` : `on CPUs ${cpus}`;
}

/**
 * `command` prefixed to start on the other core; the reference then moves its main thread alone
 * to the measured core (pinMainThread), as pinRelay places the relay's runtime.
 */
export function onOtherCpu(command: string[]): string[] {
  return canPin() ? [TASKSET, "-c", String(OTHER_CPU), ...command] : command;
}

/**
 * This process's main thread alone on the measured core. Threads started before it (V8's
 * compiler and GC helpers, started with the process) stay where they were, on the other core, as
 * the relay runtime's do; threads it starts later (Node's thread pool, which runs WebCrypto's
 * P-256 verifications) follow it, as WebCrypto runs on the relay's own thread in workerd.
 */
export function pinMainThread(): void {
  if (canPin()) pinThread(process.pid, MEASURED_CPU);
}

/**
 * µs per libsecp256k1 verify in a fresh process pinned to each core: printed with the results,
 * because it is what decides how fast either side of the ratio runs on this VM.
 */
export function verifySpeedByCpu(): string {
  if (!canPin()) return "not pinned (no taskset, or BACKLOG_PIN=0)";
  const script = join(BENCH_DIR, "verify-speed.ts");
  const speeds = [0, 1].map((cpu) => {
    const out = execFileSync(
      TASKSET,
      ["-c", String(cpu), process.execPath, ...process.execArgv, script],
      { encoding: "utf8" },
    );
    return `CPU ${cpu} ${out.trim()} µs`;
  });
  return `one secp256k1 verify, fresh process: ${speeds.join(", ")}; relay thread and reference on CPU ${MEASURED_CPU}, the rest on CPU ${OTHER_CPU}`;
}
