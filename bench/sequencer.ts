import { runWorkersBench } from "./workers-runner";

export default async function main(): Promise<void> {
  await runWorkersBench("workers/sequencer.bench-run.ts");
}
