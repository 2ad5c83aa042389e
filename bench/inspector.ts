import { readFileSync } from "node:fs";
import WebSocket from "ws";

// The relay's isolate through `wrangler dev`'s inspector (its --inspector-port, read from the
// process's command line): enough of the DevTools protocol to call a method and get its result,
// for V8's sampling profiler in the benches.

export type Inspector = { call<T>(method: string, params?: object): Promise<T>; close(): void };

/** Connects to the inspector of the `wrangler dev` whose process id is `wranglerPid`. */
export async function openInspector(wranglerPid: number): Promise<Inspector> {
  const cmdline = readFileSync(`/proc/${wranglerPid}/cmdline`, "utf8").split("\0");
  const inspectorPort = cmdline[cmdline.indexOf("--inspector-port") + 1];
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const ws = new WebSocket(targets[0]?.webSocketDebuggerUrl as string);
  await new Promise((resolve) => ws.once("open", resolve));
  let id = 0;
  const pending = new Map<number, (result: unknown) => void>();
  ws.on("message", (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) pending.get(message.id)?.(message.result);
  });
  return {
    call: <T>(method: string, params = {}) =>
      new Promise<T>((resolve) => {
        pending.set(++id, resolve as (result: unknown) => void);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}
