// `npm run bench` runs every benchmark; `npm run bench -- <name> [<name>...]` runs some.
// Each benchmark is a module in this folder whose default export runs it and prints one line per
// figure: `name: ours X, reference Y, ratio Z` (both measured in this same run, because this
// machine is shared and absolute times drift).
const BENCHMARKS = [
  "seq-rewrite",
  "validation",
  "sequencer",
  "relay-throughput",
  "replay",
  "fanout",
  "fanout-cost",
  "ws-floor",
  "fanout-profile",
  "latency",
  "append-round-trip",
  "backlog",
  "ingester-memory",
  "http-replay",
  "jetstream",
] as const;

type BenchmarkName = (typeof BENCHMARKS)[number];

function isBenchmarkName(name: string): name is BenchmarkName {
  return (BENCHMARKS as readonly string[]).includes(name);
}

async function main(): Promise<void> {
  const asked = process.argv.slice(2).filter((a) => a !== "--");
  const unknown = asked.filter((a) => !isBenchmarkName(a));
  if (unknown.length > 0) {
    console.error(`unknown benchmark(s): ${unknown.join(", ")}; known: ${BENCHMARKS.join(", ")}`);
    process.exit(2);
  }
  const names = asked.length > 0 ? (asked as BenchmarkName[]) : [...BENCHMARKS];
  for (const name of names) {
    const started = Date.now();
    console.log(`# ${name}`);
    const mod = (await import(`./${name}.ts`)) as { default: () => Promise<void> };
    await mod.default();
    console.log(`# ${name} took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }
}

await main();

export {};
