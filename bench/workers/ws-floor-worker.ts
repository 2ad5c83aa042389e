import { DurableObject } from "cloudflare:workers";

// workerd's own cost of `ws.send(frame)` to N consumers, with nothing of the relay's around it
// (bench/ws-floor.ts measures it). Consumers connect to /ws?mode=…:
//   hib:    a Durable Object accepts the socket with ctx.acceptWebSocket (Hibernation API), as
//           the Fanout does;
//   hibatt: as hib, and per socket per batch the cursor is read from and written back to the
//           socket's attachment, as the Fanout did before it kept cursors in memory;
//   hibsub: as hib, but each batch's frames are views into one buffer made fresh for the batch,
//           as the Fanout sends a delivery's records (record.frame is a subarray of them);
//   plain:  a Durable Object accepts it with ws.accept() and keeps it in memory;
//   worker: the Worker accepts it itself (no Durable Object between).
// /run?mode=…&count=&batch=&interval=&size= then sends `count` frames of `size` bytes to every
// consumer of that mode, `batch` at a time every `interval` ms (the Sequencer's delivery cadence).
// A Worker's socket can only be used from the request that accepted it, so in worker mode each
// consumer asks for its own run by sending the same query string as a text message.

type Env = { FLOOR: DurableObjectNamespace<Floor> };
type Run = { count: number; batch: number; intervalMs: number; size: number };

function frames(size: number, batch: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < batch; i++) out.push(new Uint8Array(size).fill(i + 1));
  return out;
}

/** One fresh buffer holding `batch` frames, and a view of each (a delivery's records). */
function views(size: number, batch: number): Uint8Array[] {
  const records = new Uint8Array(size * batch);
  const out: Uint8Array[] = [];
  for (let i = 0; i < batch; i++) out.push(records.subarray(i * size, (i + 1) * size).fill(i + 1));
  return out;
}

async function pump(
  run: Run,
  sockets: () => Iterable<WebSocket>,
  withAttachment = false,
  freshViews = false,
): Promise<number> {
  let batch = frames(run.size, run.batch);
  let sent = 0;
  const start = Date.now();
  for (let done = 0; done < run.count; done += run.batch) {
    if (freshViews) batch = views(run.size, run.batch);
    for (const ws of sockets()) {
      if (withAttachment) {
        const att = ws.deserializeAttachment() as { cursor: number; live: boolean };
        ws.serializeAttachment({ cursor: att.cursor + run.batch, live: true });
      }
      for (let i = 0; i < run.batch && done + i < run.count; i++) {
        ws.send(batch[i] as Uint8Array);
        sent++;
      }
    }
    const wait = start + ((done + run.batch) / run.batch) * run.intervalMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return sent;
}

function readRun(url: URL): Run {
  const n = (k: string, d: number) => Number(url.searchParams.get(k) ?? d);
  return {
    count: n("count", 1000),
    batch: n("batch", 6),
    intervalMs: n("interval", 25),
    size: n("size", 1500),
  };
}

export class Floor extends DurableObject<Env> {
  readonly #plain = new Set<WebSocket>();

  override async fetch(request: Request): Promise<Response> {
    const mode = new URL(request.url).searchParams.get("mode");
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    if (mode === "hib" || mode === "hibatt" || mode === "hibsub") {
      this.ctx.acceptWebSocket(server);
      server.serializeAttachment({ cursor: 0, live: true });
    } else {
      server.accept();
      this.#plain.add(server);
      server.addEventListener("close", () => this.#plain.delete(server));
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  async run(mode: string, run: Run): Promise<number> {
    if (mode === "plain") return pump(run, () => this.#plain);
    return pump(run, () => this.ctx.getWebSockets(), mode === "hibatt", mode === "hibsub");
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    ws.close(code === 1005 || code === 1006 ? 1000 : code, "bye");
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const mode = url.searchParams.get("mode") ?? "hib";
    const stub = env.FLOOR.get(env.FLOOR.idFromName("floor"));
    if (url.pathname === "/ws") {
      if (mode !== "worker") return stub.fetch(request);
      const pair = new WebSocketPair();
      const [client, server] = [pair[0], pair[1]];
      server.accept();
      server.addEventListener("message", (event) => {
        const run = readRun(new URL(`http://x/run?${String(event.data)}`));
        void pump(run, () => [server]);
      });
      return new Response(null, { status: 101, webSocket: client });
    }
    if (url.pathname === "/run") {
      const run = readRun(url);
      return Response.json({ sent: await stub.run(mode, run) });
    }
    return new Response("ok");
  },
} satisfies ExportedHandler<Env>;
