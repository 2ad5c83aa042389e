import { appendAnchors, type TimeAnchor } from "../log/time-anchors";
import { concatBytes } from "../protocol/bytes";
import { RpcSession, SESSION_TIMING, type SessionStub } from "../rpc-session";
import { type Pending, redeliveryDelayMs, requeueFailed } from "./redelivery";

// One queue per Fanout fed by a sender: the Sequencer feeding the Fanouts registered with it, and
// a region's head Fanout forwarding to its region's other shards. Each Fanout has at most one
// delivery in flight, at most one per `intervalMs`; batches pushed meanwhile are merged into its
// next delivery, so each Fanout receives the batches in seq order. Deliveries go over one RPC
// session per Fanout where the call rate pays (rpc-session.ts); the session is reopened when it
// breaks (the Fanout restarted) and closed when idle. A delivery that fails on the session and on
// its retry is not dropped: it goes back in front of the queue and is sent again after a backoff
// (redelivery.ts), so a Fanout that was briefly unreachable gets it within seconds even if no
// later batch comes. Past MAX_QUEUED_DELIVERY_BYTES a queue is dropped: the Fanout notices the
// gap in seqs at the next delivery and catches up from storage, so the sender's memory stays
// bounded. A Fanout that answers with zero consumers is dropped (`onNoConsumers`) unless it
// registered again after that delivery was sent.
//
// A delivery is handed to a relay where the sender has one (`relay`: an ingester passes it on
// over sockets, fanout/delivery-relay.ts), at every rate; without one it goes over the session,
// or as a plain call below the rate at which a session pays. A relayed delivery gets no answer,
// so while deliveries are relayed the Fanout is asked for its consumer count once per
// RELAY_CHECK_MS (`consumers`), to drop it as above; and when the relay reports that deliveries
// to a Fanout may be lost (`relayLost`), the Fanout is told the last seq relayed to it (`lost`),
// so that it reads what its live consumers miss at once rather than at the next delivery or its
// watchdog: one request per loss reported, tried again like a delivery while it fails.

/** Bytes queued for one Fanout before it is left to catch up from storage instead. */
export const MAX_QUEUED_DELIVERY_BYTES = 16 * 1024 * 1024;

export type Delivered = { consumers: number };

/**
 * What a Fanout is delivered: the records of seqs firstSeq..lastSeq, in order, and the time
 * anchors of the rows they come from (log/time-anchors.ts), so the Fanout times them exactly as
 * a replay of the same seqs would. Merged deliveries concatenate both.
 */
export type Delivery = {
  records: Uint8Array;
  firstSeq: number;
  lastSeq: number;
  anchors: TimeAnchor[];
};

/** How often a Fanout fed through a relay is asked how many consumers it has. */
export const RELAY_CHECK_MS = 30_000;

/** How a sender reaches the Fanouts it feeds. */
export type DeliveryRoute<S extends SessionStub> = {
  /** The one billed call that opens a delivery session to the Fanout `name`. */
  open(name: string): Promise<S>;
  /** A delivery on an open session. */
  onSession(session: S, delivery: Delivery): Promise<Delivered>;
  /** The same delivery as a plain call, below the rate at which a session pays. */
  direct(name: string, delivery: Delivery): Promise<Delivered>;
  /** Hands the delivery to a relay, at any rate; false: no relay can take it now. */
  relay?(name: string, delivery: Delivery): boolean;
  /** The Fanout's consumer count (as a delivery answers it), asked while deliveries are relayed. */
  consumers?(name: string): Promise<number>;
  /** Tells the Fanout that deliveries through `throughSeq` may not have reached it. */
  lost?(name: string, throughSeq: number): Promise<void>;
};

/** Tries of a loss notice that fails (0.5 + 1 + 2 + 4 + 8 + 8 + 8 s): past them, the Fanout's
 * watchdog (30-60 s) is as quick. */
export const LOSS_NOTICE_TRIES = 8;

type Queue<S extends SessionStub> = Pending & {
  session: RpcSession<S>;
  running: boolean;
  lastSentMs: number;
  /** Failed deliveries in a row; the next one is not sent before `retryAtMs`. */
  failures: number;
  retryAtMs: number;
  /** When the Fanout last told its consumer count (an answer, or a check while relayed). */
  answeredMs: number;
  checking: boolean;
  /** The last seq handed to the relay for this Fanout (0: none yet). */
  relayedThrough: number;
  /** A loss to tell the Fanout: deliveries through this seq may not have reached it. */
  lostThrough: number | null;
  noticing: boolean;
};

export class DeliveryQueues<S extends SessionStub> {
  readonly #route: DeliveryRoute<S>;
  readonly #intervalMs: number;
  readonly #onNoConsumers: (name: string) => void;
  readonly #queues = new Map<string, Queue<S>>();
  /** Per Fanout, how many times it registered (in memory): a "no consumers" answer to a
   * delivery sent before its latest registration must not drop it. */
  readonly #registrations = new Map<string, number>();

  constructor(route: DeliveryRoute<S>, intervalMs: number, onNoConsumers: (name: string) => void) {
    this.#route = route;
    this.#intervalMs = intervalMs;
    this.#onNoConsumers = onNoConsumers;
  }

  /** The Fanout `name` registered (again): it has consumers now. */
  registered(name: string): void {
    this.#registrations.set(name, (this.#registrations.get(name) ?? 0) + 1);
  }

  /** Queues a batch for each of `names`, without waiting for any of them. */
  push(names: Iterable<string>, delivery: Delivery): void {
    const { records, firstSeq, lastSeq, anchors } = delivery;
    for (const name of names) {
      let queue = this.#queues.get(name);
      if (!queue) {
        queue = {
          session: new RpcSession(() => this.#route.open(name), SESSION_TIMING),
          parts: [],
          anchors: [],
          bytes: 0,
          firstSeq,
          lastSeq,
          running: false,
          lastSentMs: 0,
          failures: 0,
          retryAtMs: 0,
          answeredMs: Date.now(),
          checking: false,
          relayedThrough: 0,
          lostThrough: null,
          noticing: false,
        };
        this.#queues.set(name, queue);
      }
      if (queue.bytes + records.byteLength > MAX_QUEUED_DELIVERY_BYTES) {
        queue.parts = [];
        queue.anchors = [];
        queue.bytes = 0;
      }
      if (queue.parts.length === 0) queue.firstSeq = firstSeq;
      queue.parts.push(records);
      appendAnchors(queue.anchors, anchors);
      queue.bytes += records.byteLength;
      queue.lastSeq = lastSeq;
      if (!queue.running) void this.#drain(name, queue);
    }
  }

  /**
   * The relay reports that deliveries to `name` may be lost (fanout/delivery-relay.ts): the
   * Fanout is told the last seq relayed to it, and reads what its live consumers miss. Nothing
   * relayed to it by this sender: nothing to tell (what an earlier instance of the sender
   * relayed, its start announced).
   */
  relayLost(name: string): void {
    const queue = this.#queues.get(name);
    if (!queue || queue.relayedThrough === 0 || !this.#route.lost) return;
    queue.lostThrough = Math.max(queue.lostThrough ?? 0, queue.relayedThrough);
    if (!queue.noticing) void this.#tellLost(name, queue);
  }

  /** Stops feeding `name` and closes its session. */
  remove(name: string): void {
    this.#queues.get(name)?.session.close();
    this.#queues.delete(name);
  }

  #drop(name: string): void {
    this.remove(name);
    this.#onNoConsumers(name);
  }

  /** While relayed, asks the Fanout's consumer count once per RELAY_CHECK_MS (never awaited). */
  #checkWhileRelayed(name: string, queue: Queue<S>): void {
    const route = this.#route;
    if (!route.consumers || queue.checking || Date.now() - queue.answeredMs < RELAY_CHECK_MS)
      return;
    queue.checking = true;
    const registration = this.#registrations.get(name) ?? 0;
    route
      .consumers(name)
      .then((consumers) => {
        queue.answeredMs = Date.now();
        if (consumers !== 0 || (this.#registrations.get(name) ?? 0) !== registration) return;
        if (this.#queues.get(name) === queue) this.#drop(name);
      })
      .catch(() => {
        // asked again after the next relayed delivery
      })
      .finally(() => {
        queue.checking = false;
      });
  }

  /** Sends the loss notices of one Fanout, one at a time, each tried up to LOSS_NOTICE_TRIES. */
  async #tellLost(name: string, queue: Queue<S>): Promise<void> {
    const lost = this.#route.lost;
    if (!lost) return;
    queue.noticing = true;
    try {
      let failures = 0;
      while (queue.lostThrough !== null && this.#queues.get(name) === queue) {
        const through = queue.lostThrough;
        queue.lostThrough = null;
        try {
          await lost(name, through);
          failures = 0;
        } catch (err) {
          failures++;
          console.warn(
            JSON.stringify({
              msg: "fanout loss notice failed",
              fanout: name,
              through,
              failures,
              error: String(err),
            }),
          );
          if (failures >= LOSS_NOTICE_TRIES) continue; // the Fanout's watchdog remains
          queue.lostThrough = Math.max(queue.lostThrough ?? 0, through);
          await new Promise((r) => setTimeout(r, redeliveryDelayMs(failures)));
        }
      }
    } finally {
      queue.noticing = false;
    }
  }

  async #drain(name: string, queue: Queue<S>): Promise<void> {
    queue.running = true;
    try {
      while (queue.parts.length > 0) {
        const wait = Math.max(queue.lastSentMs + this.#intervalMs, queue.retryAtMs) - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        // removed while waiting (a backoff lasts seconds): nothing more is sent to it
        if (this.#queues.get(name) !== queue) return;
        const { parts, anchors, firstSeq, lastSeq } = queue;
        queue.parts = [];
        queue.anchors = [];
        queue.bytes = 0;
        queue.lastSentMs = Date.now();
        const delivery: Delivery = {
          records: parts.length === 1 ? (parts[0] as Uint8Array) : concatBytes(parts),
          firstSeq,
          lastSeq,
          anchors,
        };
        // a registration that arrives while this delivery is in flight wins over its answer
        const registration = this.#registrations.get(name) ?? 0;
        // A relay at every rate where there is one: a session holds a request open on the
        // Fanout, which is then billed duration all the time; relayed messages leave it
        // eligible for hibernation between deliveries, billed its busy time only. A session
        // opened while no relay could take deliveries is closed (the one in flight, if any, was
        // awaited above, so this delivery cannot overtake it).
        if (this.#route.relay?.(name, delivery)) {
          queue.relayedThrough = lastSeq;
          if (queue.session.isOpen) queue.session.close();
          this.#checkWhileRelayed(name, queue);
          continue;
        }
        try {
          // Retried once on a fresh session: a Fanout that restarted breaks the session, and its
          // new instance should get this delivery rather than read it back as a gap. Repeating a
          // delivery is harmless: the Fanout sends no consumer a seq at or below its cursor.
          const answer = await queue.session.call<Delivered>(
            (session) => this.#route.onSession(session, delivery),
            true,
            () => this.#route.direct(name, delivery),
          );
          queue.answeredMs = Date.now();
          queue.failures = 0;
          if (answer.consumers === 0 && (this.#registrations.get(name) ?? 0) === registration) {
            this.#drop(name);
            return;
          }
        } catch (err) {
          // sent again, with whatever was queued meanwhile: one or two requests per failure
          queue.failures++;
          const retryInMs = redeliveryDelayMs(queue.failures);
          queue.retryAtMs = Date.now() + retryInMs;
          Object.assign(queue, requeueFailed(queue, delivery, MAX_QUEUED_DELIVERY_BYTES));
          console.warn(
            JSON.stringify({
              msg: "fanout delivery failed",
              fanout: name,
              firstSeq,
              lastSeq,
              failures: queue.failures,
              retryInMs,
              error: String(err),
            }),
          );
        }
      }
    } finally {
      queue.running = false;
    }
  }
}
