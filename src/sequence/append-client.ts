import type { Env } from "../env";
import { DeliveryRelay } from "../fanout/delivery-relay";
import { meterSocketReply } from "../metering/meter";
import { sequencerStub } from "../stubs";
import {
  type AppendBatch,
  decodeFrame,
  encodeBatch,
  encodeRelayLost,
  encodeRelayRefused,
} from "./append-codec";
import { MAX_APPEND_MESSAGE_BYTES } from "./append-limits";
import { APPEND_SOCKET_PATH } from "./append-socket";
import type { AppendResult } from "./hot-log";

export type AppendClientOptions = {
  /** Close the socket once no batch has been sent on it for this long. */
  idleCloseMs: number;
  /** A batch unanswered for this long: its socket is taken as broken. */
  replyTimeoutMs: number;
  /** The class whose answers received are counted (the meter; docs/cost.md). */
  meterAs: string;
};

export const APPEND_CLIENT_DEFAULTS: AppendClientOptions = {
  idleCloseMs: 30_000,
  replyTimeoutMs: 30_000,
  meterAs: "HostIngester",
};

export { MAX_APPEND_MESSAGE_BYTES } from "./append-limits";

/** The Sequencer answered a batch with an error: sent again, it would fail the same way. */
class AppendRefused extends Error {}

type Queued = {
  batch: AppendBatch;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
};

type Exchange = {
  id: number;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
};

/**
 * An ingester's way to the Sequencer: one WebSocket (append-socket.ts), each batch one binary
 * message answered by one message once it is durable. The Sequencer accepts the socket with
 * the hibernation API, so it may sleep between batches, and each batch is billed 1/20 of a
 * request (plus, conservatively, 1/20 for the answer the ingester receives: docs/cost.md),
 * where an RPC call is one request and an RPC session keeps the Sequencer awake. The ingester
 * holds its upstream sockets, so it is awake anyway; the socket is closed after `idleCloseMs`
 * without a batch so that an ingester whose hosts went quiet can hibernate too.
 *
 * One batch at a time, in order: the next is sent once the previous is answered (the ingester
 * flushes one batch at a time anyway). A batch whose socket closes, errs or stays unanswered for
 * `replyTimeoutMs` is sent once more on a new socket, and if that fails too (or no socket opens,
 * or the batch is too big for one message) as a plain `appendBatch` RPC call. That cannot
 * duplicate an event: the Sequencer either committed the batch or not (appendEvents writes it
 * in one transaction), and if it did, its per-host cursor, written in that same transaction, is
 * at or past every upstream seq of the batch, so the batch sent again counts each of them as a
 * duplicate (hot-log.ts) and assigns no seq. Nor can it lose one: no later batch is sent before
 * this one is answered, so no later batch can move a host's cursor past events of this one that
 * were not committed. Events without a host (relay-made, host "") are not deduplicated that way
 * and must not be sent through here; the ingester sends none. A batch the Sequencer answers
 * with an error (its commit failed) is not retried here: the caller keeps it and retries.
 *
 * The Sequencer may also send Fanout deliveries on the socket for this ingester to relay
 * (fanout/delivery-relay.ts); they are passed on as they come, and the relay sockets are closed
 * with this one.
 */
export class AppendClient {
  readonly #env: Env;
  readonly #options: AppendClientOptions;
  readonly #queue: Queued[] = [];
  #pumping = false;
  #socket: Promise<WebSocket> | null = null;
  #exchange: Exchange | null = null;
  #nextId = 1;
  #idleTimer: ReturnType<typeof setTimeout> | null = null;
  #socketsOpened = 0;
  #plainCalls = 0;
  readonly #relay: DeliveryRelay;
  #relayed = 0;
  #relayMessages = 0;

  constructor(env: Env, options: Partial<AppendClientOptions> = {}) {
    this.#env = env;
    this.#options = { ...APPEND_CLIENT_DEFAULTS, ...options };
    this.#relay = new DeliveryRelay(
      env,
      (fanout) => this.#tellSequencer(encodeRelayRefused(fanout)),
      (fanout) => this.#tellSequencer(encodeRelayLost(fanout)),
    );
  }

  /** Fanout deliveries relayed so far (one per Fanout). */
  get relayed(): number {
    return this.#relayed;
  }

  /** Delivery messages received from the Sequencer so far (one may name several Fanouts). */
  get relayMessages(): number {
    return this.#relayMessages;
  }

  /** Appends a batch; resolves once it is durable (Sequencer.appendBatch's result). */
  append(batch: AppendBatch): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      this.#queue.push({ batch, resolve, reject });
      void this.#pump();
    });
  }

  /** Sockets opened so far (each one billed request to the Sequencer: its upgrade). */
  get socketsOpened(): number {
    return this.#socketsOpened;
  }

  /** Batches sent as plain `appendBatch` calls (the fallback), each one billed request. */
  get plainCalls(): number {
    return this.#plainCalls;
  }

  get isOpen(): boolean {
    return this.#socket !== null;
  }

  /** Closes the socket now (the next batch opens another). */
  close(): void {
    if (this.#idleTimer !== null) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = null;
    }
    const socket = this.#socket;
    this.#socket = null;
    this.#relay.closeAll();
    socket?.then(
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

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    if (this.#idleTimer !== null) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = null;
    }
    try {
      for (let next = this.#queue.shift(); next; next = this.#queue.shift()) {
        try {
          next.resolve(await this.#send(next.batch));
        } catch (err) {
          next.reject(err);
        }
      }
    } finally {
      this.#pumping = false;
      this.#armIdleClose();
    }
  }

  async #send(batch: AppendBatch): Promise<AppendResult> {
    const id = this.#nextId++;
    let frame: Uint8Array | null = null;
    try {
      frame = encodeBatch(id, batch);
    } catch {
      // more hosts in one batch than a frame counts: the plain call takes it
    }
    if (frame && frame.byteLength <= MAX_APPEND_MESSAGE_BYTES)
      for (let attempt = 0; attempt < 2; attempt++) {
        let ws: WebSocket;
        try {
          ws = await this.#open();
        } catch {
          break;
        }
        try {
          return await this.#exchangeOn(ws, id, frame);
        } catch (err) {
          if (err instanceof AppendRefused) throw err;
          this.#broken(ws);
        }
      }
    this.#plainCalls++;
    return sequencerStub(this.#env).appendBatch(batch);
  }

  #exchangeOn(ws: WebSocket, id: number, frame: Uint8Array): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#exchange?.id === id) {
          this.#exchange = null;
          reject(new Error(`append ${id} unanswered for ${this.#options.replyTimeoutMs} ms`));
        }
      }, this.#options.replyTimeoutMs);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        settle();
      };
      this.#exchange = {
        id,
        resolve: (result) => done(() => resolve(result)),
        reject: (error) => done(() => reject(error)),
      };
      try {
        ws.send(frame);
      } catch (err) {
        this.#exchange = null;
        done(() => reject(err));
      }
    });
  }

  /** The open socket, or a new one. */
  #open(): Promise<WebSocket> {
    if (this.#socket) return this.#socket;
    this.#socketsOpened++;
    const socket = (async () => {
      const response = await sequencerStub(this.#env).fetch(
        `https://sequencer${APPEND_SOCKET_PATH}`,
        { headers: { Upgrade: "websocket" } },
      );
      const ws = response.webSocket;
      if (response.status !== 101 || !ws)
        throw new Error(`append socket refused: HTTP ${response.status}`);
      // before accept(), or binary frames arrive as Blobs (as in ingest/upstream.ts)
      ws.binaryType = "arraybuffer";
      ws.accept();
      ws.addEventListener("message", (event) => this.#onMessage(event.data));
      const gone = (why: string) => {
        if (this.#socket === socket) {
          this.#socket = null;
          this.#relay.closeAll();
        }
        const exchange = this.#exchange;
        this.#exchange = null;
        exchange?.reject(new Error(`append socket ${why}`));
      };
      ws.addEventListener("close", (event) => gone(`closed (${event.code})`));
      ws.addEventListener("error", () => gone("failed"));
      return ws;
    })();
    this.#socket = socket;
    socket.catch(() => {
      if (this.#socket === socket) this.#socket = null;
    });
    return socket;
  }

  #onMessage(data: unknown): void {
    meterSocketReply(this.#options.meterAs);
    const exchange = this.#exchange;
    let bytes: Uint8Array;
    let frame: ReturnType<typeof decodeFrame>;
    try {
      if (!(data instanceof ArrayBuffer)) throw new RangeError("append answers are binary");
      bytes = new Uint8Array(data);
      frame = decodeFrame(bytes);
    } catch (err) {
      this.#exchange = null;
      exchange?.reject(err);
      return;
    }
    if (frame.kind === "delivery") {
      // the same bytes to each Fanout named: each reads the delivery and ignores the names
      this.#relayMessages++;
      for (const fanout of frame.delivery.fanouts) {
        this.#relayed++;
        this.#relay.forward(fanout, bytes);
      }
      return;
    }
    if (!exchange) return; // the answer to a batch given up on (sent again since)
    if (frame.kind === "relayRefused" || frame.kind === "relayLost") return;
    if (frame.id !== exchange.id) return; // an answer to a batch given up on
    this.#exchange = null;
    if (frame.kind === "result") exchange.resolve(frame.result);
    else if (frame.kind === "error") exchange.reject(new AppendRefused(frame.message));
    else exchange.reject(new Error("the Sequencer sent a batch frame"));
  }

  /**
   * Tells the Sequencer that deliveries relayed to a Fanout may be lost: this ingester could not
   * reach it (relayRefused: the Sequencer delivers to it by RPC a while) or its socket to it
   * broke (relayLost). Either way the Sequencer tells the Fanout (delivery-queues.ts).
   */
  #tellSequencer(notice: Uint8Array): void {
    void this.#socket
      ?.then((ws) => ws.send(notice))
      .catch(() => {
        // the append socket is gone too: its close tells the Sequencer as much (RelayChoice)
      });
  }

  /** Drops a socket taken as broken (the next batch opens another). */
  #broken(ws: WebSocket): void {
    this.#socket = null;
    this.#relay.closeAll();
    try {
      ws.close(1011, "broken");
    } catch {
      // already closed
    }
  }

  #armIdleClose(): void {
    if (this.#idleTimer !== null || !this.#socket) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = null;
      if (!this.#pumping && this.#queue.length === 0) this.close();
    }, this.#options.idleCloseMs);
  }
}
