import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

/** Runs one workerd benchmark file through the vitest pool and prints its FIGURE lines. */
export async function runWorkersBench(
  file: string,
  env: Record<string, string> = {},
): Promise<string[]> {
  const vitest = join(BENCH_DIR, "..", "node_modules", ".bin", "vitest");
  const child = spawn(vitest, ["run", "--config", "vitest.workers.config.ts", file], {
    cwd: BENCH_DIR,
    env: { ...process.env, ...env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    output += c.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  const figures = output
    .split("\n")
    .filter((l) => l.includes("FIGURE "))
    .map((l) => l.slice(l.indexOf("FIGURE ") + 7));
  if (code !== 0 || figures.length === 0)
    throw new Error(`benchmark ${file} failed:\n${output.slice(-4000)}`);
  for (const f of figures) console.log(f);
  return figures;
}
