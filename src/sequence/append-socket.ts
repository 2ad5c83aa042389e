import {
  type AppendBatch,
  type AppendResult,
  decodeFrame,
  encodeDelivery,
  encodeError,
  encodeResult,
  type RelayedDelivery,
} from "./append-codec";
import { MAX_APPEND_MESSAGE_BYTES } from "./append-limits";

// The Sequencer's end of an append socket (append-client.ts has the ingester's end). Accepted
// with the hibernation API (`ctx.acceptWebSocket`), so an open socket does not keep the
// Sequencer from hibernating, and each batch is one incoming WebSocket message, billed 1/20 of
// a request, instead of an RPC call (one request) or an RPC session (which keeps the Sequencer
// awake: docs/cost.md). Each message is a batch, answered by one message once the batch is
// durable: the output gate holds every outgoing message of the object until its writes are, as
// it holds RPC answers.

/** The tag of append sockets among the Sequencer's hibernatable sockets. */
export const APPEND_SOCKET_TAG = "append";
/** The Sequencer's path for opening an append socket (any other is 404). */
export const APPEND_SOCKET_PATH = "/append-socket";

/** What the Sequencer keeps per append socket (survives hibernation). */
type AppendSocketAttachment = { appender: string };

/** Accepts an append socket; `appender` tells one appender's batches from another's. */
export function acceptAppendSocket(ctx: DurableObjectState, request: Request): Response {
  if (new URL(request.url).pathname !== APPEND_SOCKET_PATH)
    return new Response("not found", { status: 404 });
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket")
    return new Response("expected a WebSocket upgrade", { status: 426 });
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  ctx.acceptWebSocket(server, [APPEND_SOCKET_TAG]);
  server.serializeAttachment({ appender: crypto.randomUUID() } satisfies AppendSocketAttachment);
  return new Response(null, { status: 101, webSocket: client });
}

export function isAppendSocket(ctx: DurableObjectState, ws: WebSocket): boolean {
  return ctx.getTags(ws).includes(APPEND_SOCKET_TAG);
}

/**
 * Answers one message of an append socket: appends its batch (`append`, with the socket's
 * appender) and sends the result, or an error frame if the append failed or the message is
 * not a batch; an ingester's word that it could not relay to a Fanout goes to `relayRefused`. A socket the ingester has closed meanwhile gets nothing: it sends the batch again
 * on another (appends are idempotent per host cursor, append-client.ts).
 */
export async function answerAppendMessage(
  ws: WebSocket,
  message: string | ArrayBuffer,
  append: (batch: AppendBatch, appender: string) => Promise<AppendResult>,
  relayRefused: (fanout: string) => void,
): Promise<void> {
  let reply: Uint8Array;
  let id = 0;
  try {
    if (typeof message === "string") throw new RangeError("append frames are binary");
    const frame = decodeFrame(new Uint8Array(message));
    if (frame.kind === "relayRefused") {
      relayRefused(frame.fanout);
      return;
    }
    if (frame.kind !== "batch") throw new RangeError(`unexpected ${frame.kind} frame`);
    id = frame.id;
    const appender = (ws.deserializeAttachment() as AppendSocketAttachment | null)?.appender;
    reply = encodeResult(id, await append(frame.batch, appender ?? "unknown"));
  } catch (err) {
    reply = encodeError(id, String(err));
  }
  try {
    ws.send(reply);
  } catch {
    // closed meanwhile: the ingester sends it again
  }
}

/** How long a Fanout an ingester could not reach is fed by RPC instead of through a relay. */
export const RELAY_REFUSED_MS = 60_000;

const WS_OPEN = 1;

/**
 * Which append socket relays the Sequencer's Fanout deliveries (fanout/delivery-relay.ts): one
 * at a time, kept while it is open, so deliveries to a Fanout follow one ordered path; another
 * is chosen only when it closes. A Fanout an ingester could not reach is left to RPC deliveries
 * for RELAY_REFUSED_MS.
 */
export class RelayChoice {
  readonly #ctx: DurableObjectState;
  #socket: WebSocket | null = null;
  readonly #refusedUntil = new Map<string, number>();

  constructor(ctx: DurableObjectState) {
    this.#ctx = ctx;
  }

  /** Sends `delivery` to be relayed; false when no ingester can take it (deliver by RPC). */
  send(delivery: RelayedDelivery): boolean {
    const until = this.#refusedUntil.get(delivery.fanout);
    if (until !== undefined) {
      if (until > Date.now()) return false;
      this.#refusedUntil.delete(delivery.fanout);
    }
    // a message an ingester cannot receive (Cloudflare's 1 MiB limit) goes by RPC
    if (delivery.records.byteLength + delivery.fanout.length * 3 + 32 > MAX_APPEND_MESSAGE_BYTES)
      return false;
    const ws = this.#relay();
    if (!ws) return false;
    try {
      ws.send(encodeDelivery(delivery));
      return true;
    } catch {
      this.#socket = null;
      return false;
    }
  }

  refused(fanout: string): void {
    this.#refusedUntil.set(fanout, Date.now() + RELAY_REFUSED_MS);
  }

  closed(ws: WebSocket): void {
    if (this.#socket === ws) this.#socket = null;
  }

  #relay(): WebSocket | null {
    if (this.#socket?.readyState === WS_OPEN) return this.#socket;
    this.#socket =
      this.#ctx.getWebSockets(APPEND_SOCKET_TAG).find((ws) => ws.readyState === WS_OPEN) ?? null;
    return this.#socket;
  }
}
