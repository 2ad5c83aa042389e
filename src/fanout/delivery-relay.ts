import type { Env } from "../env";
import { decodeFrame, type RelayedDelivery } from "../sequence/append-codec";
import { fanoutStub } from "../stubs";

// Fanout deliveries relayed by an ingester, so that neither the Sequencer nor the Fanout is kept
// awake by them and each hop is one WebSocket message (1/20 of a request) instead of an RPC
// call (one request): the Sequencer sends a delivery on the append socket of one connected
// ingester (hibernatable on the Sequencer's side), the ingester, awake anyway for its upstream
// sockets, forwards the same bytes on a socket of its own to the Fanout, which accepts it with
// the hibernation API, tagged apart from its consumers. Sockets keep order but answer nothing,
// so a delivery lost on the way is not seen by its sender; whoever sees the loss tells the
// Sequencer, which tells the Fanout (Fanout.deliveriesLost, delivery-queues.ts), so that its live
// consumers are caught up at once even when no later delivery reveals the gap: the ingester
// reports a Fanout it cannot reach (`onRefused`) and a socket to a Fanout that broke (`onLost`),
// and the Sequencer sees the ingester's append socket close (an ingester that restarted takes
// the deliveries it held with it; append-socket.ts RelayChoice). The Sequencer falls back to RPC
// deliveries whenever no ingester can relay (delivery-queues.ts).

/** The Fanout's path for a relay socket. */
export const RELAY_SOCKET_PATH = "/relay-socket";
/** The tag of relay sockets among a Fanout's hibernatable sockets (consumers have none). */
export const RELAY_SOCKET_TAG = "relay";

/** The Fanout's end: accepts an ingester's relay socket. */
export function acceptRelaySocket(ctx: DurableObjectState, request: Request): Response {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket")
    return new Response("expected a WebSocket upgrade", { status: 426 });
  const pair = new WebSocketPair();
  ctx.acceptWebSocket(pair[1], [RELAY_SOCKET_TAG]);
  return new Response(null, { status: 101, webSocket: pair[0] });
}

export function isRelayRequest(request: Request): boolean {
  return new URL(request.url).pathname === RELAY_SOCKET_PATH;
}

export function isRelaySocket(ctx: DurableObjectState, ws: WebSocket): boolean {
  return ctx.getTags(ws).includes(RELAY_SOCKET_TAG);
}

/** A relay socket's message as a delivery; null for anything else (ignored). */
export function relayedDelivery(message: string | ArrayBuffer): RelayedDelivery | null {
  if (typeof message === "string") return null;
  try {
    const frame = decodeFrame(new Uint8Array(message));
    return frame.kind === "delivery" ? frame.delivery : null;
  } catch {
    return null;
  }
}

type RelaySocket = { ready: Promise<WebSocket> };

/**
 * The ingester's end: one socket per Fanout it relays to, opened at the first delivery for it.
 * Deliveries are sent in the order given (each waits for its socket like the ones before it).
 * A Fanout it cannot reach is reported through `onRefused` (the Sequencer then delivers to it
 * by RPC for a while) and its socket dropped; a socket that closes or fails without this end
 * closing it is reported through `onLost` (what was sent on it may not have arrived). Either
 * way the next delivery for that Fanout tries a new socket.
 */
export class DeliveryRelay {
  readonly #env: Env;
  readonly #onRefused: (fanout: string) => void;
  readonly #onLost: (fanout: string) => void;
  readonly #sockets = new Map<string, RelaySocket>();

  constructor(env: Env, onRefused: (fanout: string) => void, onLost: (fanout: string) => void) {
    this.#env = env;
    this.#onRefused = onRefused;
    this.#onLost = onLost;
  }

  /** Sends `frame` (a delivery frame, passed on as it came) to the Fanout `fanout`. */
  forward(fanout: string, frame: Uint8Array): void {
    let socket = this.#sockets.get(fanout);
    if (!socket) {
      socket = { ready: this.#open(fanout) };
      this.#sockets.set(fanout, socket);
    }
    const current = socket;
    current.ready.then(
      (ws) => {
        try {
          ws.send(frame);
        } catch {
          this.#refused(fanout, current);
        }
      },
      () => this.#refused(fanout, current),
    );
  }

  /** Closes every relay socket (the ingester is going quiet: nothing may keep it awake). */
  closeAll(): void {
    const sockets = [...this.#sockets.values()];
    this.#sockets.clear();
    for (const socket of sockets)
      socket.ready.then(
        (ws) => {
          try {
            ws.close(1000, "idle");
          } catch {
            // already closed
          }
        },
        () => {},
      );
  }

  get size(): number {
    return this.#sockets.size;
  }

  #refused(fanout: string, socket: RelaySocket): void {
    // reported once per socket, however many deliveries were waiting on it
    if (this.#sockets.get(fanout) !== socket) return;
    this.#sockets.delete(fanout);
    this.#onRefused(fanout);
  }

  async #open(fanout: string): Promise<WebSocket> {
    const response = await fanoutStub(this.#env, fanout).fetch(
      `https://fanout${RELAY_SOCKET_PATH}`,
      {
        headers: { Upgrade: "websocket" },
      },
    );
    const ws = response.webSocket;
    if (response.status !== 101 || !ws) throw new Error(`relay socket refused: ${response.status}`);
    ws.accept();
    // reported once, and only while it is this Fanout's socket: closeAll forgets its sockets
    // before closing them
    const gone = () => {
      const socket = this.#sockets.get(fanout);
      if (socket)
        void socket.ready.then((open) => {
          if (open !== ws || this.#sockets.get(fanout) !== socket) return;
          this.#sockets.delete(fanout);
          this.#onLost(fanout);
        });
    };
    ws.addEventListener("close", gone);
    ws.addEventListener("error", gone);
    return ws;
  }
}
