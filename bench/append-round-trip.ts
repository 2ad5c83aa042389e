import { runWorkersBench } from "./workers-runner";

// An append's round trip in workerd, append socket vs plain RPC (workers/append-round-trip.bench-run.ts).
export default async function main(): Promise<void> {
  await runWorkersBench("workers/append-round-trip.bench-run.ts");
}
