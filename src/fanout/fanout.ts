import { DurableObject, RpcTarget } from "cloudflare:workers";
import { readConfig } from "../config";
import type { Env } from "../env";
import { type JetstreamAttachment, JetstreamConsumers } from "../jetstream/consumers";
import { parseSubscribeParams, parseSubscriberMessage, wantsZstd } from "../jetstream/options";
import { exactTimes, legacySegmentTimes, type TimeOf } from "../jetstream/time";
import { iterateRecords, recordsSeqRange } from "../log/records";
import { decodeAnchors } from "../log/time-anchors";
import { meterObject, meterSessionTarget } from "../metering/meter";
import { opsLog } from "../ops-log";
import { decideStreamStart } from "../protocol/cursor";
import { encodeErrorFrame, encodeInfoFrame } from "../protocol/frame";
import type { LogRead } from "../sequence/hot-log";
import { fanoutStub, sequencerStub } from "../stubs";
import { type ConsumerBudget, charge, drain, newBudget, waitForBacklog } from "./consumer-budget";
import { type Delivery, DeliveryQueues } from "./delivery-queues";
import {
  acceptRelaySocket,
  isRelayRequest,
  isRelaySocket,
  relayedDelivery,
} from "./delivery-relay";
import { RecentBatches } from "./recent-batches";
import { regionalPlace, upstreamFanout } from "./regions";
import { ReplaySlots } from "./replay-slots";
import { SegmentReader } from "./segment-reader";

// A Fanout holds consumer WebSockets (Hibernation API) and serves subscribeRepos to them.
// Each consumer goes backfill -> cutover -> live:
//   backfill: read the log after the consumer's cursor, from R2 segments and the Sequencer's hot
//             tail, in bounded chunks, paced by the consumer's modelled backlog;
//   cutover:  when the log has nothing newer, the batches that arrived meanwhile are taken from
//             RecentBatches and the consumer turns live, with no await in between;
//   live:     each batch the Sequencer delivers is sent to live consumers, skipping seqs at or
//             below a consumer's cursor (no duplicates). A batch that starts after the last one
//             this Fanout received (a delivery it missed) is preceded by one read of the gap for
//             all consumers; a consumer whose cursor is still short of a batch goes back to
//             backfill (no gaps).
// The cursor (last seq sent) lives in the socket attachment, so hibernation loses nothing.
// Backfills hold up to a read chunk each, so only a few run at once (ReplaySlots); the rest wait
// in line. A live consumer stays live: the watchdog alarm only restarts backfills lost to
// eviction, re-registers with the Sequencer, and, when live consumers are still behind a head
// the Sequencer reported one alarm earlier (a lost delivery that no later batch revealed, e.g.
// on a quiet relay), reads the missing part once for the whole Fanout. Lost deliveries are
// rarely left to it: a failed one is sent again by its sender (redelivery.ts), and what a
// Sequencer had queued when it restarted, or a relay lost, is caught up when the Sequencer tells
// this Fanout so (deliveriesLost).
//
// Regional Fanouts (regions.ts) form a two-level tree: a region's head (shard 0) registers with
// the Sequencer and is fed by it; the region's other shards register with their head
// (registerShard) and the head forwards every batch it receives to those with consumers, over a
// DeliveryQueues of its own. A forwarded batch is handled exactly as a delivery (gap read-back,
// cursor dedupe, RecentBatches), so the hop changes nothing for consumers.

export const FANOUT_NAME_HEADER = "x-freehose-fanout";
export const CURSOR_HEADER = "x-freehose-cursor";

const REPLAY_CHUNK_BYTES = 1024 * 1024;
const RECENT_BATCHES_BYTES = 8 * 1024 * 1024;
/** While consumers are connected, re-register with the Sequencer this often (it may forget us). */
const WATCHDOG_INTERVAL_MS = 30_000;
/** Storage key of the Sequencer's head seq as the previous watchdog alarm saw it. */
const WATCHDOG_HEAD_KEY = "watchdogHead";
/** Storage key of a region head's shards with consumers (written only when the set changes). */
const FORWARD_SHARDS_KEY = "forwardShards";
/** Consumers listed one by one in `describe` (the count is always complete). */
const DESCRIBED_CONSUMERS_MAX = 1000;

/** What a Fanout is doing, for metrics and tests. */
export type FanoutStats = {
  consumers: number;
  /** Upgrades being accepted (they count as consumers in delivery answers). */
  connecting: number;
  live: number;
  /** Consumers replaying from storage now (each holds a replay slot). */
  replaying: number;
  /** Consumers waiting for a replay slot. */
  queuedReplays: number;
  /** readLog calls this Fanout made on the Sequencer since it was last loaded. */
  logReads: number;
  /** Last seq of the newest batch the Sequencer delivered since this Fanout was loaded. */
  deliveredThrough: number | null;
  /** A region head: the region's other shards it forwards batches to. */
  forwardsTo: number;
};

/** One Fanout as `/admin/fanout` shows it. */
export type FanoutView = FanoutStats & {
  name: string | null;
  /** Its region's shards this head forwards to (empty for any other Fanout). */
  shards: string[];
  /** Per consumer (at most DESCRIBED_CONSUMERS_MAX): the last seq sent and whether it is live. */
  cursors: { cursor: number; live: boolean }[];
};

type Attachment = { cursor: number; live: boolean; jetstream?: JetstreamAttachment };

/** Set by the Worker on a Jetstream `/subscribe` upgrade (jetstream/): the query is in the URL. */
export const JETSTREAM_HEADER = "x-freehose-jetstream";

type Deliver = (delivery: Delivery) => Promise<{ consumers: number }>;

/**
 * The Sequencer's delivery session to one Fanout (Fanout.openDeliverySession): one billed
 * request, then every `deliver` on it is free. `deliver` is `Fanout.deliver`.
 */
export class DeliverySession extends RpcTarget {
  readonly #deliver: Deliver;

  constructor(deliver: Deliver) {
    super();
    this.#deliver = deliver;
    meterSessionTarget(this, "Fanout", "session");
  }

  async deliver(delivery: Delivery): Promise<{ consumers: number }> {
    return this.#deliver(delivery);
  }
}

/**
 * A region head's forwarding session to one of its shards (Fanout.openForwardSession): as a
 * DeliverySession, but counted apart, so the meter tells Sequencer deliveries from forwards.
 */
export class ForwardSession extends RpcTarget {
  readonly #deliver: Deliver;

  constructor(deliver: Deliver) {
    super();
    this.#deliver = deliver;
    meterSessionTarget(this, "Fanout", "forwardSession");
  }

  async forward(delivery: Delivery): Promise<{ consumers: number }> {
    return this.#deliver(delivery);
  }
}

const WS_OPEN = 1;
/** The tag every consumer socket is accepted with, so deliveries list them with one call. */
const CONSUMER_SOCKET_TAG = "consumer";

export class Fanout extends DurableObject<Env> {
  readonly #recent = new RecentBatches(RECENT_BATCHES_BYTES);
  /** Consumers with a backfill running or waiting for a replay slot. */
  readonly #backfilling = new Set<WebSocket>();
  readonly #replaySlots: ReplaySlots;
  /** Consumers between the start of their upgrade and the accepted socket. */
  #connecting = 0;
  /** The catch-up running (#catchUp), if any. */
  #catchingUp: Promise<void> | null = null;
  #logReads = 0;
  #deliveredThrough: number | null = null;
  /** In-memory copy of WATCHDOG_HEAD_KEY (undefined: not read since the object was loaded). */
  #watchdogHead: number | null | undefined;
  readonly #budgets = new Map<WebSocket, ConsumerBudget>();
  readonly #segments: SegmentReader;
  /** Assumed minimum read rate of a consumer (see consumer-budget.ts). */
  readonly #minBytesPerSecond: number;
  /** Modelled backlog above which a live consumer is ConsumerTooSlow. */
  readonly #maxBacklogBytes: number;
  /** Backfill sends while the modelled backlog is below this. */
  readonly #replayHighWaterBytes: number;
  #name: string | null = null;
  /** A region head: its region's shards with consumers, fed by #forwards. */
  #shards = new Set<string>();
  readonly #forwards: DeliveryQueues<Rpc.Stub<ForwardSession>>;
  /** Sockets whose disconnect was logged (a close the relay started is echoed by the consumer). */
  readonly #disconnectLogged = new WeakSet<WebSocket>();
  readonly #jetstream: JetstreamConsumers;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    meterObject(this, ctx, env, "Fanout");
    this.#segments = new SegmentReader(env.EVENT_LOG);
    const config = readConfig(env);
    this.#minBytesPerSecond = config.consumerMinBytesPerSecond;
    this.#maxBacklogBytes = config.consumerMaxBacklogBytes;
    this.#replayHighWaterBytes = Math.floor(config.consumerMaxBacklogBytes / 8);
    this.#replaySlots = new ReplaySlots(config.fanoutMaxConcurrentReplays);
    this.#forwards = new DeliveryQueues(
      {
        open: (name) => fanoutStub(env, name).openForwardSession(),
        onSession: (session, delivery) => session.forward(delivery),
        direct: (name, delivery) => fanoutStub(env, name).forward(delivery),
      },
      config.fanoutDeliveryIntervalMs,
      (name) => void this.#dropShard(name),
    );
    this.#jetstream = new JetstreamConsumers(ctx.storage);
    ctx.blockConcurrencyWhile(async () => {
      await this.#jetstream.load(
        ctx
          .getWebSockets()
          .map((ws) => (ws.deserializeAttachment() as Attachment | null)?.jetstream)
          .filter((att) => att !== undefined),
      );
      const shards = await ctx.storage.get<string[]>(FORWARD_SHARDS_KEY);
      if (shards) this.#shards = new Set(shards);
    });
  }

  #sequencer() {
    return sequencerStub(this.env);
  }

  async #ownName(): Promise<string> {
    if (this.#name) return this.#name;
    this.#name = (await this.ctx.storage.get<string>("name")) ?? null;
    if (!this.#name) throw new Error("fanout has no name yet");
    return this.#name;
  }

  async #setName(name: string): Promise<void> {
    if (name === this.#name) return;
    this.#name = name;
    await this.ctx.storage.put("name", name);
  }

  /**
   * Asks to be fed live batches: a region's non-head shard asks its head, any other Fanout the
   * Sequencer. Either way the answer is the Sequencer's head seq as of the registration.
   */
  async #register(): Promise<{ headSeq: number }> {
    const name = await this.#ownName();
    const head = upstreamFanout(name);
    if (head === null) return this.#sequencer().registerFanout(name);
    return fanoutStub(this.env, head).registerShard(name);
  }

  /**
   * A shard of this head's region has consumers: forward it every batch from now on. The shard
   * is in the forward set before this head registers with the Sequencer, so every batch
   * sequenced after the head seq returned here reaches the shard.
   */
  async registerShard(shard: string): Promise<{ headSeq: number }> {
    const head = upstreamFanout(shard);
    if (head === null) throw new Error(`${shard} is not a regional shard`);
    await this.#setName(head);
    this.#forwards.registered(shard);
    if (!this.#shards.has(shard)) {
      this.#shards.add(shard);
      await this.ctx.storage.put(FORWARD_SHARDS_KEY, [...this.#shards]);
    }
    return this.#sequencer().registerFanout(head);
  }

  async #dropShard(shard: string): Promise<void> {
    if (!this.#shards.delete(shard)) return;
    await this.ctx.storage.put(FORWARD_SHARDS_KEY, [...this.#shards]);
  }

  /** A batch forwarded by this shard's region head: handled exactly as a delivery. */
  async forward(delivery: Delivery): Promise<{ consumers: number }> {
    return this.#deliver(delivery);
  }

  /** Opens a region head's forwarding session to this shard (see openDeliverySession). */
  async openForwardSession(): Promise<ForwardSession> {
    return new ForwardSession((delivery) => this.#deliver(delivery));
  }

  /** Upgrades a consumer. The Worker has validated the cursor and the upgrade already. */
  override async fetch(request: Request): Promise<Response> {
    // an ingester relaying the Sequencer's deliveries (fanout/delivery-relay.ts), not a consumer
    if (isRelayRequest(request)) return acceptRelaySocket(this.ctx, request);
    // Counted as a consumer from now on: a delivery answered while this upgrade awaits the
    // Sequencer must not report zero consumers, or the Sequencer would stop feeding this Fanout
    // right after registering it, and a live-only consumer would receive nothing.
    this.#connecting++;
    try {
      return await this.#upgrade(request);
    } finally {
      this.#connecting--;
    }
  }

  async #upgrade(request: Request): Promise<Response> {
    if (request.headers.has(JETSTREAM_HEADER)) return this.#upgradeJetstream(request);
    const name = request.headers.get(FANOUT_NAME_HEADER);
    if (name) await this.#setName(name);
    const rawCursor = request.headers.get(CURSOR_HEADER);
    const cursor = rawCursor === null || rawCursor === "" ? null : Number(rawCursor);
    const { headSeq } = await this.#register();
    const state = await this.#sequencer().getLogState();
    const start = decideStreamStart(cursor, { headSeq, trimmedThrough: state.trimmedThrough });
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + WATCHDOG_INTERVAL_MS);

    // no await from here on: the socket is accepted and positioned in one step
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [CONSUMER_SOCKET_TAG]);
    opsLog("consumer_connect", {
      fanout: this.#name,
      cursor,
      start: start.kind,
      region: this.#region(),
    });
    switch (start.kind) {
      case "future":
        this.#closeWithError(server, "FutureCursor", "cursor is ahead of the relay's latest seq");
        break;
      case "live":
        this.#joinLive(server, start.afterSeq);
        break;
      case "replay":
        if (start.outdated)
          server.send(
            encodeInfoFrame(
              "OutdatedCursor",
              "cursor is older than the replay window; starting from the oldest event",
            ),
          );
        this.#attach(server, { cursor: start.afterSeq, live: false });
        void this.#backfill(server);
        break;
      default: {
        const unreachable: never = start;
        throw new Error(`unhandled start ${JSON.stringify(unreachable)}`);
      }
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * A Jetstream consumer (jetstream/): its time cursor becomes the seq just before the first event
   * sequenced at or after it (one Sequencer call, reading the segment index and hot rows' time
   * anchors, not events: sequence/time-index.ts); from there it is
   * a consumer like any other, sent JSON instead of frames. A cursor older than the window starts
   * at the oldest event, and one newer than anything stored starts live, as Jetstream does. With
   * requireHello it waits, positioned, for its first options_update.
   */
  async #upgradeJetstream(request: Request): Promise<Response> {
    const name = request.headers.get(FANOUT_NAME_HEADER);
    if (name) await this.#setName(name);
    const params = new URL(request.url).searchParams;
    const parsed = parseSubscribeParams(params);
    if (!parsed.ok) return new Response(parsed.message, { status: 400 });
    const { options, cursorUs, requireHello } = parsed.params;
    const { headSeq } = await this.#register();
    let afterSeq: number | null = null;
    if (cursorUs !== null) {
      // may be past headSeq (events sequenced since the registration): the backfill reads them,
      // and those before the cursor are not sent
      afterSeq = await this.#sequencer().jetstreamSeqBefore(cursorUs);
    }
    const jetstream = await this.#jetstream.attach(
      options,
      requireHello,
      wantsZstd(params, request.headers),
    );
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + WATCHDOG_INTERVAL_MS);

    // no await from here on: the socket is accepted and positioned in one step
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [CONSUMER_SOCKET_TAG]);
    opsLog("consumer_connect", {
      fanout: this.#name,
      cursor: afterSeq,
      start: afterSeq === null ? "jetstream live" : "jetstream replay",
      region: this.#region(),
    });
    this.#attach(server, { cursor: afterSeq ?? headSeq, live: false, jetstream });
    if (!requireHello) {
      if (afterSeq === null) this.#joinLive(server, headSeq);
      else void this.#backfill(server);
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Moves a consumer's cursor, keeping the rest of its attachment. */
  #position(ws: WebSocket, cursor: number, live: boolean): void {
    const jetstream = this.#attachment(ws)?.jetstream;
    this.#attach(ws, jetstream ? { cursor, live, jetstream } : { cursor, live });
  }

  /**
   * Makes a consumer live after `afterSeq` (the head when this Fanout registered for it). Batches
   * delivered between that registration and now are in RecentBatches: they are sent at once,
   * so nothing sequenced after the registration is missed even if no later batch comes.
   */
  #joinLive(ws: WebSocket, afterSeq: number): void {
    const newer = this.#recent.after(afterSeq);
    if (newer === null) {
      this.#position(ws, afterSeq, false);
      void this.#backfill(ws);
      return;
    }
    let cursor = afterSeq;
    for (const batch of newer)
      cursor = this.#sendRecords(ws, batch.records, cursor, exactTimes(batch.anchors));
    this.#position(ws, cursor, true);
  }

  /** Consumers' sockets: one tag query, no per-socket tag check (relay sockets are not tagged so). */
  #consumerSockets(): WebSocket[] {
    return this.ctx.getWebSockets(CONSUMER_SOCKET_TAG);
  }

  /**
   * A consumer's attachment, read from the socket each time: it is what a wake from
   * hibernation starts from, and relayed deliveries leave the Fanout eligible for hibernation
   * after any of them. An in-memory copy would save nothing measurable (reading and writing it
   * is part of the ~1 µs per message sent of our own code, docs/benchmarks.md) and could drift
   * from what a wake reads.
   */
  #attachment(ws: WebSocket): Attachment | null {
    return ws.deserializeAttachment() as Attachment | null;
  }

  /** Writes a consumer's attachment (never mutated in place: readers may hold the old one). */
  #attach(ws: WebSocket, att: Attachment): void {
    ws.serializeAttachment(att);
  }

  /**
   * How many consumers this Fanout holds, as a delivery answers it: asked by the Sequencer while
   * its deliveries come through a relay, which answers nothing (fanout/delivery-relay.ts).
   */
  async consumerCount(): Promise<number> {
    return this.#consumerSockets().length + this.#connecting + this.#shards.size;
  }

  /**
   * Deliveries through `throughSeq` may not have reached this Fanout, and on a quiet relay no
   * later delivery would reveal it: the Sequencer started a new instance with this head (what
   * its previous one had queued died with it), or a relay lost deliveries (delivery-relay.ts,
   * delivery-queues.ts relayLost). Live consumers behind it are caught up with one read for
   * the whole Fanout, as for a gap; a region head passes the notice on to its shards, whose
   * forwards may have been lost the same way.
   */
  async deliveriesLost(throughSeq: number): Promise<void> {
    for (const shard of this.#shards)
      fanoutStub(this.env, shard)
        .deliveriesLost(throughSeq)
        .catch(() => {
          // the shard's watchdog remains
        });
    // a catch-up already running may have read the log before these seqs were sequenced
    while (this.#catchingUp) await this.#catchingUp;
    const behind = this.#liveBehind(throughSeq);
    if (behind !== null) await this.#catchUp(behind);
  }

  /** The lowest cursor of the open live consumers whose cursor is below `seq`; null if none is. */
  #liveBehind(seq: number): number | null {
    let lowest: number | null = null;
    for (const ws of this.#consumerSockets()) {
      const att = this.#attachment(ws);
      if (!att?.live || ws.readyState !== WS_OPEN || att.cursor >= seq) continue;
      lowest = Math.min(lowest ?? att.cursor, att.cursor);
    }
    return lowest;
  }

  /** A batch from the Sequencer, in seq order. Returns how many consumers this Fanout holds. */
  async deliver(delivery: Delivery): Promise<{ consumers: number }> {
    return this.#deliver(delivery);
  }

  /**
   * Opens the Sequencer's delivery session: its deliveries for one billed request. It breaks
   * when this object restarts; the Sequencer then opens another.
   */
  async openDeliverySession(): Promise<DeliverySession> {
    return new DeliverySession((delivery) => this.#deliver(delivery));
  }

  async #deliver(delivery: Delivery): Promise<{ consumers: number }> {
    const { records, firstSeq, lastSeq, anchors } = delivery;
    const previous = this.#deliveredThrough;
    this.#deliveredThrough = Math.max(previous ?? lastSeq, lastSeq);
    if (previous !== null && firstSeq > previous + 1) {
      // This Fanout missed a delivery (the sender dropped its queue past 16 MB, a relayed one was
      // lost on a socket, or the Sequencer restarted with deliveries queued): read
      // the gap once for every consumer, rather than send each to a backfill of its own (a
      // readLog each, two at a time). The Sequencer sends the next delivery after this returns.
      await this.#catchUp(previous);
    }
    this.#recent.push(delivery);
    const consumers = this.#deliverToAll(records, firstSeq, lastSeq, exactTimes(anchors));
    if (this.#shards.size > 0) this.#forwards.push(this.#shards, delivery);
    // a head's shards count: the Sequencer keeps feeding a head while any of them has consumers
    return { consumers: consumers + this.#connecting + this.#shards.size };
  }

  /** Sends a run of records to every live consumer it continues; returns the socket count. */
  #deliverToAll(records: Uint8Array, firstSeq: number, lastSeq: number, timeOf: TimeOf): number {
    const sockets = this.#consumerSockets();
    for (const ws of sockets) {
      // one consumer's broken socket must not cost the others this batch
      try {
        this.#deliverTo(ws, records, firstSeq, lastSeq, timeOf);
      } catch (err) {
        console.warn(JSON.stringify({ msg: "send to consumer failed", error: String(err) }));
      }
    }
    return sockets.length;
  }

  async stats(): Promise<FanoutStats> {
    let live = 0;
    const sockets = this.#consumerSockets();
    for (const ws of sockets) {
      if (this.#attachment(ws)?.live) live++;
    }
    const queuedReplays = this.#replaySlots.queued;
    return {
      consumers: sockets.length,
      connecting: this.#connecting,
      live,
      replaying: this.#backfilling.size - queuedReplays,
      queuedReplays,
      logReads: this.#logReads,
      deliveredThrough: this.#deliveredThrough,
      forwardsTo: this.#shards.size,
    };
  }

  /** This Fanout for `/admin/fanout`: its stats, its shards and its consumers' cursors. */
  async describe(): Promise<FanoutView> {
    const name = this.#name ?? (await this.ctx.storage.get<string>("name")) ?? null;
    const cursors: FanoutView["cursors"] = [];
    for (const ws of this.#consumerSockets()) {
      if (cursors.length >= DESCRIBED_CONSUMERS_MAX) break;
      const att = this.#attachment(ws);
      if (att) cursors.push({ cursor: att.cursor, live: att.live });
    }
    return { ...(await this.stats()), name, shards: [...this.#shards], cursors };
  }

  #deliverTo(
    ws: WebSocket,
    records: Uint8Array,
    firstSeq: number,
    lastSeq: number,
    timeOf: TimeOf,
  ): void {
    if (ws.readyState !== WS_OPEN) return;
    const att = this.#attachment(ws);
    if (!att?.live || lastSeq <= att.cursor) return;
    if (firstSeq > att.cursor + 1) {
      // this Fanout missed a delivery: fill the gap from storage, then rejoin
      this.#position(ws, att.cursor, false);
      void this.#backfill(ws);
      return;
    }
    this.#sendRecords(ws, records, att.cursor, timeOf);
    this.#position(ws, lastSeq, true);
    const budget = this.#budgets.get(ws);
    if (budget && budget.backlogBytes > this.#maxBacklogBytes) {
      this.#closeWithError(ws, "ConsumerTooSlow", "consumer is not keeping up with the stream");
    }
  }

  /**
   * Sends the frames of `records` with seq > afterSeq (a Jetstream consumer: the JSON messages
   * it wants, timed by `timeOf`); returns the last seq sent.
   */
  #sendRecords(ws: WebSocket, records: Uint8Array, afterSeq: number, timeOf: TimeOf): number {
    const att = this.#attachment(ws);
    if (att?.jetstream) {
      const sent = this.#jetstream.send(ws, att.jetstream, records, afterSeq, timeOf);
      this.#charge(ws, sent.bytes);
      return sent.last;
    }
    let last = afterSeq;
    let bytes = 0;
    for (const record of iterateRecords(records)) {
      if (record.seq <= last) continue;
      ws.send(record.frame);
      bytes += record.frame.byteLength;
      last = record.seq;
    }
    this.#charge(ws, bytes);
    return last;
  }

  #charge(ws: WebSocket, bytes: number): void {
    const now = Date.now();
    this.#budgets.set(
      ws,
      charge(this.#budgets.get(ws) ?? newBudget(now), bytes, now, this.#minBytesPerSecond),
    );
  }

  async #backfill(ws: WebSocket): Promise<void> {
    if (this.#backfilling.has(ws)) return;
    this.#backfilling.add(ws);
    let release: (() => void) | null = null;
    try {
      release = await this.#replaySlots.acquire();
      const sequencer = this.#sequencer();
      for (;;) {
        if (ws.readyState !== WS_OPEN) return;
        const att = this.#attachment(ws) as Attachment;
        await this.#pace(ws);
        this.#logReads++;
        const read = await sequencer.readLog(att.cursor, REPLAY_CHUNK_BYTES);
        if (ws.readyState !== WS_OPEN) return;
        switch (read.kind) {
          case "caughtUp": {
            const newer = this.#recent.after(att.cursor);
            if (newer === null) continue; // a delivery is missing from memory: read it from the log
            let cursor = att.cursor;
            for (const batch of newer)
              cursor = this.#sendRecords(ws, batch.records, cursor, exactTimes(batch.anchors));
            this.#position(ws, cursor, true);
            return;
          }
          case "trimmed":
            // Jetstream has no such notice: its consumers just continue from the oldest event
            if (!att.jetstream)
              ws.send(
                encodeInfoFrame(
                  "OutdatedCursor",
                  "events were removed from the replay window while replaying",
                ),
              );
            this.#position(ws, read.trimmedThrough, false);
            break;
          case "hot": {
            const cursor = this.#sendRecords(
              ws,
              read.records,
              att.cursor,
              exactTimes(read.anchors),
            );
            this.#position(ws, cursor, false);
            break;
          }
          case "segment": {
            let cursor = att.cursor;
            const timeOf = segmentTimes(read);
            for await (const records of this.#segments.read(read.key, read.bytes, cursor)) {
              if (ws.readyState !== WS_OPEN) return;
              cursor = this.#sendRecords(ws, records, cursor, timeOf);
              this.#position(ws, cursor, false);
              await this.#pace(ws);
            }
            break;
          }
          default: {
            const unreachable: never = read;
            throw new Error(`unhandled log read ${JSON.stringify(unreachable)}`);
          }
        }
      }
    } catch (err) {
      console.error(JSON.stringify({ msg: "backfill failed", error: String(err) }));
      this.#closeWithError(ws, "InternalError", "replay failed; reconnect with your cursor");
    } finally {
      release?.();
      this.#backfilling.delete(ws);
    }
  }

  /** Waits until the consumer's modelled backlog is under the replay high-water mark. */
  async #pace(ws: WebSocket): Promise<void> {
    const budget = this.#budgets.get(ws);
    if (!budget) return;
    const now = Date.now();
    const current = drain(budget, now, this.#minBytesPerSecond);
    this.#budgets.set(ws, current);
    const waitMs = waitForBacklog(current, this.#replayHighWaterBytes, this.#minBytesPerSecond);
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
  }

  #closeWithError(ws: WebSocket, error: string, message: string): void {
    this.#logDisconnect(ws, "relay", { error });
    try {
      // Jetstream consumers get the close code and reason only, as from Jetstream
      if (!this.#attachment(ws)?.jetstream) ws.send(encodeErrorFrame(error, message));
      ws.close(1008, error);
    } catch {
      // already closed
    }
    this.#budgets.delete(ws);
  }

  /**
   * subscribeRepos is one-way: its consumers have nothing to say. A Jetstream consumer may send
   * options_update: its filter changes from the next event on; an invalid one is answered with
   * an error message and changes nothing; other message types are ignored, as by Jetstream.
   */
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (isRelaySocket(this.ctx, ws)) {
      const delivery = relayedDelivery(message);
      if (delivery) await this.#deliver(delivery);
      return;
    }
    const att = this.#attachment(ws);
    if (!att?.jetstream) return;
    const text = typeof message === "string" ? message : new TextDecoder().decode(message);
    const parsed = parseSubscriberMessage(text);
    if (parsed.kind === "ignored") return;
    if (parsed.kind === "invalid") {
      ws.send(JSON.stringify({ error: "InvalidOptions", message: parsed.message }));
      return;
    }
    const placed = await this.#jetstream.update(ws, att.jetstream, parsed.options);
    // the cursor moved on while the options were stored
    const now = this.#attachment(ws) ?? att;
    this.#attach(ws, { ...now, jetstream: { ...placed, waitingHello: false } });
    if (att.jetstream.waitingHello) void this.#backfill(ws);
  }

  #logDisconnect(ws: WebSocket, by: "consumer" | "relay", why: { code?: number; error?: string }) {
    if (this.#disconnectLogged.has(ws)) return;
    this.#disconnectLogged.add(ws);
    const cursor = this.#attachment(ws)?.cursor ?? null;
    opsLog("consumer_disconnect", {
      fanout: this.#name,
      cursor,
      by,
      ...why,
      region: this.#region(),
    });
  }

  /** The region of this Fanout (null: the global shards, regions off). */
  #region(): string | null {
    return this.#name === null ? null : (regionalPlace(this.#name)?.region ?? null);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    if (isRelaySocket(this.ctx, ws)) {
      try {
        ws.close(1000, "bye");
      } catch {
        // already closed
      }
      return;
    }
    this.#logDisconnect(ws, "consumer", { code });
    this.#budgets.delete(ws);
    await this.#forgetJetstream(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "bye");
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    if (isRelaySocket(this.ctx, ws)) return;
    this.#logDisconnect(ws, "consumer", { error: "socket error" });
    this.#budgets.delete(ws);
    await this.#forgetJetstream(ws);
  }

  async #forgetJetstream(ws: WebSocket): Promise<void> {
    const jetstream = this.#attachment(ws)?.jetstream;
    if (jetstream) await this.#jetstream.forget(jetstream);
  }

  /**
   * Watchdog: keeps the Sequencer feeding us and restarts backfills lost to eviction. A live
   * consumer behind the current head is normal (a delivery is in flight) and stays live; one
   * still behind the head of the previous alarm, a whole interval ago, lost a delivery that no
   * later batch revealed, and is caught up by one log read for the whole Fanout.
   */
  override async alarm(): Promise<void> {
    const sockets = this.#consumerSockets();
    if (sockets.length === 0) return;
    const { headSeq } = await this.#register();
    if (this.#watchdogHead === undefined)
      this.#watchdogHead = (await this.ctx.storage.get<number>(WATCHDOG_HEAD_KEY)) ?? null;
    const previousHead = this.#watchdogHead;
    let staleFrom: number | null = null;
    for (const ws of sockets) {
      const att = this.#attachment(ws);
      if (!att || ws.readyState !== WS_OPEN) continue;
      if (!att.live && !att.jetstream?.waitingHello) void this.#backfill(ws);
      else if (previousHead !== null && att.cursor < previousHead)
        staleFrom = Math.min(staleFrom ?? att.cursor, att.cursor);
    }
    if (staleFrom !== null) void this.#catchUp(staleFrom);
    if (headSeq !== previousHead) {
      // written only when the head moved: a quiet relay's Fanout writes nothing per alarm
      await this.ctx.storage.put(WATCHDOG_HEAD_KEY, headSeq);
      this.#watchdogHead = headSeq;
    }
    await this.ctx.storage.setAlarm(Date.now() + WATCHDOG_INTERVAL_MS);
  }

  /**
   * Reads the log after `afterSeq` once for the whole Fanout and hands each chunk to every live
   * consumer as if the Sequencer had delivered it (#deliverTo skips what a consumer has and
   * sends one with an older cursor to its own backfill). Used only for lost deliveries: one
   * revealed by the next delivery, or one the watchdog found on a quiet relay.
   */
  #catchUp(afterSeq: number): Promise<void> {
    if (this.#catchingUp) return this.#catchingUp;
    const running = this.#readGap(afterSeq).finally(() => {
      this.#catchingUp = null;
    });
    this.#catchingUp = running;
    return running;
  }

  async #readGap(afterSeq: number): Promise<void> {
    try {
      const sequencer = this.#sequencer();
      let cursor = afterSeq;
      for (;;) {
        this.#logReads++;
        const read = await sequencer.readLog(cursor, REPLAY_CHUNK_BYTES);
        switch (read.kind) {
          case "caughtUp":
            return;
          case "trimmed":
            // consumers that far behind get OutdatedCursor from their own backfill
            for (const ws of this.#consumerSockets()) {
              const att = this.#attachment(ws);
              if (!att?.live || att.cursor >= read.trimmedThrough) continue;
              this.#position(ws, att.cursor, false);
              void this.#backfill(ws);
            }
            cursor = read.trimmedThrough;
            break;
          case "hot":
            this.#deliverToAll(read.records, cursor + 1, read.lastSeq, exactTimes(read.anchors));
            cursor = read.lastSeq;
            break;
          case "segment": {
            const timeOf = segmentTimes(read);
            for await (const records of this.#segments.read(read.key, read.bytes, cursor)) {
              const range = recordsSeqRange(records);
              if (range) this.#deliverToAll(records, range.firstSeq, range.lastSeq, timeOf);
            }
            cursor = read.lastSeq;
            break;
          }
          default: {
            const unreachable: never = read;
            throw new Error(`unhandled log read ${JSON.stringify(unreachable)}`);
          }
        }
      }
    } catch (err) {
      // the next alarm tries again
      console.error(JSON.stringify({ msg: "fanout catch-up failed", error: String(err) }));
    }
  }
}

/** The times of a sealed segment's events: its anchors, or the estimate for one sealed before. */
function segmentTimes(read: Extract<LogRead, { kind: "segment" }>): TimeOf {
  return read.anchors ? exactTimes(decodeAnchors(read.anchors)) : legacySegmentTimes(read);
}
