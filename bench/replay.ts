import WebSocket from "ws";
import { startPdsNetwork } from "../test/support/pds-network";
import { reportRatio } from "./report";
import { runWorkersBench } from "./workers-runner";

// Replay to one consumer from far back. Ours: events in sealed R2 segments, in workerd.
// Reference: the reference PDS's own subscribeRepos replaying its SQLite sequencer from
// cursor=0, measured in this run on as many events as a PDS can be given in a few seconds.
async function referencePdsReplay(): Promise<number> {
  const network = await startPdsNetwork({ pdsCount: 1, accountsPerPds: 8 });
  try {
    const host = network.hosts[0]!;
    await Promise.all(
      host.accounts.map(async (a) => {
        for (let i = 0; i < 150; i++)
          await a.agent.post({
            text: `replay reference ${i}`,
            createdAt: new Date().toISOString(),
          });
      }),
    );
    // timed from the request, as the consumer experiences it (ours is timed the same way)
    const start = Date.now();
    const ws = new WebSocket(
      `${host.url.replace("http", "ws")}/xrpc/com.atproto.sync.subscribeRepos?cursor=0`,
    );
    let received = 0;
    let last = Date.now();
    ws.on("message", () => {
      received++;
      last = Date.now();
    });
    // the stream goes quiet when the backlog is done
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (received > 0 && Date.now() - last > 500) {
          clearInterval(timer);
          resolve();
        }
      }, 50);
    });
    ws.close();
    return (received * 1000) / Math.max(1, last - start);
  } finally {
    await network.close();
  }
}

export default async function main(): Promise<void> {
  const [figure] = await runWorkersBench("workers/replay.bench-run.ts");
  const ours = Number(
    /([\d,]+) events\/s/.exec(figure ?? "")?.[1]?.replaceAll(",", "") ?? Number.NaN,
  );
  const reference = await referencePdsReplay();
  reportRatio(
    "replay to one consumer (freehose from R2 vs reference PDS from SQLite)",
    ours,
    reference,
    "events/s",
  );
}
