import type { Delivery } from "../fanout/delivery-queues";
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
 * not a batch; an ingester's word that it could not relay to a Fanout, or lost its socket to
 * one, goes to `relays`. A socket the ingester has closed meanwhile gets nothing: it sends the
 * batch again on another (appends are idempotent per host cursor, append-client.ts).
 */
export async function answerAppendMessage(
  ws: WebSocket,
  message: string | ArrayBuffer,
  append: (batch: AppendBatch, appender: string) => Promise<AppendResult>,
  relays: Pick<RelayChoice, "refused" | "lost">,
): Promise<void> {
  let reply: Uint8Array;
  let id = 0;
  try {
    if (typeof message === "string") throw new RangeError("append frames are binary");
    const frame = decodeFrame(new Uint8Array(message));
    if (frame.kind === "relayRefused") {
      relays.refused(frame.fanout);
      return;
    }
    if (frame.kind === "relayLost") {
      relays.lost([frame.fanout]);
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
/** Fanouts one relayed delivery message names at most (more share the next message). */
const RELAY_MAX_FANOUTS_PER_MESSAGE = 256;
/** Room kept in a relayed message for its header and the names of its Fanouts (≤ 250 B each). */
const RELAY_NAMES_ROOM_BYTES = 64 * 1024;

/** A Fanout delivery as the Sequencer hands it to the relay: one Fanout's. */
type FanoutDelivery = Delivery & { fanout: string };

/**
 * Which append socket relays the Sequencer's Fanout deliveries (fanout/delivery-relay.ts): one
 * at a time, kept while it is open, so deliveries to a Fanout follow one ordered path; another
 * is chosen only when it closes. A Fanout an ingester could not reach is left to RPC deliveries
 * for RELAY_REFUSED_MS. Relayed deliveries get no answer, so every sign that some may be lost
 * is passed to `onLost` with the Fanouts concerned (the Sequencer then tells them:
 * delivery-queues.ts relayLost): an ingester's refusal of or lost socket to a Fanout, a delivery
 * that could not be sent, and the relaying socket closing (an ingester that restarts or goes
 * idle takes what it held with it), for every Fanout relayed on it. Deliveries of the same seqs
 * handed over in the same turn go as one message naming all their Fanouts: the ingester receives
 * one message per delivery, not one per Fanout. They are handed over in one turn whenever
 * batches come further apart than FANOUT_DELIVERY_INTERVAL_MS (a batch is then delivered to
 * every Fanout at once, from the append that brought it: the full network's 11 batches/s
 * against 25 ms); faster, each Fanout's queue waits out its interval on a timer of its own, and
 * their deliveries go one by one.
 */
export class RelayChoice {
  readonly #ctx: DurableObjectState;
  readonly #onLost: (fanouts: Iterable<string>) => void;
  #socket: WebSocket | null = null;
  /** The Fanouts deliveries were sent to on `#socket` (in memory: see `closed`). */
  #relayedOn = new Set<string>();
  readonly #refusedUntil = new Map<string, number>();
  /** Deliveries taken this turn, sent at its end (a microtask), grouped by their records. */
  #pending: RelayedDelivery[] = [];

  constructor(ctx: DurableObjectState, onLost: (fanouts: Iterable<string>) => void) {
    this.#ctx = ctx;
    this.#onLost = onLost;
  }

  /**
   * Takes `delivery` to be relayed; false when no ingester can take it (deliver by RPC). Sent at
   * the end of this turn: a socket that fails then loses it, and its Fanout is told (`onLost`).
   */
  send(delivery: FanoutDelivery): boolean {
    const until = this.#refusedUntil.get(delivery.fanout);
    if (until !== undefined) {
      if (until > Date.now()) return false;
      this.#refusedUntil.delete(delivery.fanout);
    }
    // a message an ingester cannot receive (Cloudflare's 1 MiB limit) goes by RPC; room is kept
    // for the names of many Fanouts sharing it
    if (delivery.records.byteLength + RELAY_NAMES_ROOM_BYTES > MAX_APPEND_MESSAGE_BYTES)
      return false;
    if (!this.#relay()) return false;
    const { fanout, ...rest } = delivery;
    const same = this.#pending.find(
      // the same seqs are the same records and anchors (every queue merges the same batches)
      (d) =>
        d.records.byteLength === rest.records.byteLength &&
        d.firstSeq === rest.firstSeq &&
        d.lastSeq === rest.lastSeq &&
        d.fanouts.length < RELAY_MAX_FANOUTS_PER_MESSAGE,
    );
    if (same) same.fanouts.push(fanout);
    else {
      if (this.#pending.length === 0) queueMicrotask(() => this.#flush());
      this.#pending.push({ ...rest, fanouts: [fanout] });
    }
    return true;
  }

  #flush(): void {
    const pending = this.#pending;
    this.#pending = [];
    for (const delivery of pending) {
      const ws = this.#relay();
      try {
        if (!ws) throw new Error("no relay");
        ws.send(encodeDelivery(delivery));
        for (const fanout of delivery.fanouts) this.#relayedOn.add(fanout);
      } catch {
        if (ws) this.#lose(ws);
        this.#onLost(delivery.fanouts);
      }
    }
  }

  /** An ingester could not reach `fanout`: what it was relayed is lost, and RPC takes over. */
  refused(fanout: string): void {
    this.#refusedUntil.set(fanout, Date.now() + RELAY_REFUSED_MS);
    this.#onLost([fanout]);
  }

  /** An ingester's socket to each of `fanouts` broke: what was relayed on it may be lost. */
  lost(fanouts: Iterable<string>): void {
    this.#onLost(fanouts);
  }

  /**
   * An append socket closed. The relaying one takes with it what it had not passed on yet, for
   * any Fanout relayed on it. Kept in memory only: a Sequencer that hibernated and wakes to this
   * close relayed nothing since it woke, and its start told every Fanout its head.
   */
  closed(ws: WebSocket): void {
    if (this.#socket === ws) this.#lose(ws);
  }

  /** Leaves the relaying socket `ws`, telling the Fanouts relayed on it. */
  #lose(ws: WebSocket): void {
    if (this.#socket !== ws) return;
    this.#socket = null;
    const fanouts = this.#relayedOn;
    this.#relayedOn = new Set();
    if (fanouts.size > 0) this.#onLost(fanouts);
  }

  #relay(): WebSocket | null {
    if (this.#socket?.readyState === WS_OPEN) return this.#socket;
    // no longer open, though its close may not have come yet
    if (this.#socket) this.#lose(this.#socket);
    this.#socket =
      this.#ctx.getWebSockets(APPEND_SOCKET_TAG).find((ws) => ws.readyState === WS_OPEN) ?? null;
    return this.#socket;
  }
}
