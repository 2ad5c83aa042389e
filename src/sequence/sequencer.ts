import { DurableObject } from "cloudflare:workers";
import { type Config, readConfig } from "../config";
import type { Env } from "../env";
import { DeliveryQueues } from "../fanout/delivery-queues";
import type { DeliverySession } from "../fanout/fanout";
import { segmentKey } from "../log/segment";
import { meterObject } from "../metering/meter";
import type { LogSummary } from "../status/summary";
import { fanoutStub } from "../stubs";
import type { AppendBatch } from "./append-codec";
import {
  acceptAppendSocket,
  answerAppendMessage,
  isAppendSocket,
  RelayChoice,
} from "./append-socket";
import { GroupCommit } from "./group-commit";
import { loadHostCursors, loadHostEpochs, resetHostCursor } from "./host-cursors";
import {
  type AppendRequest,
  type AppendResult,
  appendGroup,
  applySchema,
  hotLogBytes,
  type IngestEvent,
  type LogRead,
  loadHeadSeq,
  loadLastTimeUs,
  readLog,
  retainedFloor,
  sealedThrough,
} from "./hot-log";
import { newestSegmentsShown, oldestEventMs } from "./log-summary";
import { expireSegments, type SealOutcome, sealSegment } from "./seal";
import { readSegmentPage, type SegmentPage } from "./segment-index";
import { loadTakedowns, writeTakedown } from "./takedowns";
import { seqBeforeTime } from "./time-index";

export type { AppendBatch, AppendResult, IngestEvent, LogRead, SegmentPage };

export type LogState = {
  headSeq: number;
  /** The relay's time of the newest event, in µs (its Jetstream time_us); 0 on an empty log. */
  headTimeUs: number;
  oldestSeq: number | null;
  /**
   * Nothing at or below this seq is retained: deleted by retention, or before FIRST_SEQ (a
   * cursor below it is outdated). hot-log.ts retainedFloor.
   */
  trimmedThrough: number;
  hotRows: number;
  hotBytes: number;
  segments: number;
  writable: boolean;
};

/** The outcome of an admin takedown or restore (Sequencer.setTakedown). */
export type TakedownOutcome = {
  /** False when the DID already was in that state: nothing was written or emitted. */
  changed: boolean;
  /** Seq of the `#account` frame emitted, or null when nothing changed. */
  seq: number | null;
};

/** Alarm period for sealing by age and retention when nothing else triggers them. */
const MAINTENANCE_INTERVAL_MS = 30_000;

/**
 * The single writer of global order. Thin: every decision is in hot-log.ts and seal.ts.
 * It assigns seqs, keeps the hot log, seals segments to R2, applies retention, and feeds the
 * Fanouts that currently hold consumers.
 */
export class Sequencer extends DurableObject<Env> {
  readonly #config: Config;
  #headSeq = 0;
  /** Unix µs of the newest event sequenced: every later one is timed after it (hot-log.ts). */
  #lastTimeUs = 0;
  #hostCursors = new Map<string, number>();
  #hostEpochs = new Map<string, number>();
  #takedowns = new Set<string>();
  #hotBytes = 0;
  #sealing: Promise<SealOutcome> | null = null;
  #fanouts = new Set<string>();
  readonly #deliveries: DeliveryQueues<Rpc.Stub<DeliverySession>>;
  readonly #appends: GroupCommit<AppendRequest, AppendResult>;
  readonly #relays: RelayChoice;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    meterObject(this, ctx, env, "Sequencer");
    this.#config = readConfig(env);
    this.#relays = new RelayChoice(ctx, (fanouts) => {
      for (const name of fanouts) this.#deliveries.relayLost(name);
    });
    this.#deliveries = new DeliveryQueues(
      {
        open: (name) => fanoutStub(env, name).openDeliverySession(),
        onSession: (session, delivery) => session.deliver(delivery),
        direct: (name, delivery) => fanoutStub(env, name).deliver(delivery),
        relay: (name, delivery) => this.#relays.send({ fanout: name, ...delivery }),
        consumers: (name) => fanoutStub(env, name).consumerCount(),
        lost: (name, throughSeq) => fanoutStub(env, name).deliveriesLost(throughSeq),
      },
      this.#config.fanoutDeliveryIntervalMs,
      (name) => this.#unregisterFanout(name),
    );
    this.#appends = new GroupCommit(this.#config.sequencerGroupCommitMs, (requests) =>
      this.#commit(requests),
    );
    ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql;
      applySchema(sql);
      this.#headSeq = loadHeadSeq(sql, this.#config.firstSeq);
      this.#lastTimeUs = loadLastTimeUs(sql);
      this.#hostCursors = loadHostCursors(sql);
      this.#hostEpochs = loadHostEpochs(sql);
      this.#takedowns = loadTakedowns(sql);
      this.#hotBytes = hotLogBytes(sql);
      for (const row of sql.exec<{ name: string }>("SELECT name FROM fanouts"))
        this.#fanouts.add(row.name);
      this.#announceStart();
      if ((await ctx.storage.getAlarm()) === null)
        await ctx.storage.setAlarm(Date.now() + MAINTENANCE_INTERVAL_MS);
    });
  }

  /**
   * Appends a batch from a HostIngester. Resolves only once the batch is durable, committed with
   * the other batches that arrive within SEQUENCER_GROUP_COMMIT_MS (group-commit.ts). `hostEpochs`:
   * per host, the reset epoch its events were read under (getHostPosition); events read before
   * an admin reset of that host are refused as `CursorReset` (hot-log.ts appendGroup).
   */
  async appendBatch(batch: AppendBatch): Promise<AppendResult> {
    return this.#appendBatch(batch);
  }

  /**
   * Opens an ingester's append socket (append-client.ts, append-socket.ts): accepted with the
   * hibernation API, so it keeps nothing awake; each batch on it is one message.
   */
  override async fetch(request: Request): Promise<Response> {
    return acceptAppendSocket(this.ctx, request);
  }

  /** A batch on an append socket: appended as by appendBatch, answered on the socket. */
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (!isAppendSocket(this.ctx, ws)) return;
    await answerAppendMessage(
      ws,
      message,
      (batch, appender) => this.#appendBatch(batch, appender),
      this.#relays,
    );
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.#relays.closed(ws);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    this.#relays.closed(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "bye");
    } catch {
      // already closed
    }
  }

  /** Joins the current group commit (group-commit.ts); resolves once the group is durable. */
  #appendBatch(batch: AppendBatch, appender?: string): Promise<AppendResult> {
    const request: AppendRequest = { events: batch.events };
    if (batch.hostEpochs) request.hostEpochs = batch.hostEpochs;
    return this.#appends.submit(request, appender);
  }

  /** Appends an event the relay makes itself (in the current group, like any batch). */
  async emitRelayEvent(frame: Uint8Array, did: string): Promise<AppendResult> {
    return this.#appends.submit({ events: [{ host: "", upstreamSeq: 0, frame, did }] });
  }

  /**
   * The relay-wide takedown of a DID (admin): from now on every event of that DID is refused
   * (`RepoTakendown`), whatever host or ingester it comes from; a restore lets them through
   * again. In one transaction with the change, `accountFrame` (the `#account` that tells
   * consumers) is appended, and only when the state really changed, so an admin call that is
   * retried emits nothing twice.
   */
  async setTakedown(
    did: string,
    takendown: boolean,
    accountFrame: Uint8Array,
  ): Promise<TakedownOutcome> {
    if (this.#takedowns.has(did) === takendown) return { changed: false, seq: null };
    // its own transaction, after the batches already waiting (they arrived before it, so they
    // are judged without it); batches arriving later are judged with it
    const { lastSeq } = this.#appends.commitAlone({
      events: [{ host: "", upstreamSeq: 0, frame: accountFrame, did }],
      inTransaction: (sql) => writeTakedown(sql, did, takendown, Date.now()),
    });
    if (takendown) this.#takedowns.add(did);
    else this.#takedowns.delete(did);
    return { changed: true, seq: lastSeq };
  }

  async isTakendown(did: string): Promise<boolean> {
    return this.#takedowns.has(did);
  }

  async getHostCursor(host: string): Promise<number | null> {
    return this.#hostCursors.get(host) ?? null;
  }

  /** A host's cursor and its reset epoch, for an ingester to tag its batches with. */
  async getHostPosition(host: string): Promise<{ cursor: number | null; epoch: number }> {
    return { cursor: this.#hostCursors.get(host) ?? null, epoch: this.#hostEpochs.get(host) ?? 0 };
  }

  /**
   * Admin recovery when a PDS has reset its own seq: accept its low seqs again. Returns the
   * host's new reset epoch; batches tagged with an older one are refused (appendBatch).
   */
  async resetHostCursor(host: string): Promise<number> {
    // batches waiting for their group commit arrived before the reset: committed first, so the
    // reset removes what they sequenced instead of being undone by them
    this.#appends.flush();
    const epoch = resetHostCursor(this.ctx.storage, host);
    this.#hostCursors.delete(host);
    this.#hostEpochs.set(host, epoch);
    return epoch;
  }

  async getLogState(): Promise<LogState> {
    return this.#logState();
  }

  #logState(): LogState {
    const sql = this.ctx.storage.sql;
    const hot = sql
      .exec<{ n: number; first: number | null }>(
        "SELECT COUNT(*) AS n, MIN(first_seq) AS first FROM hot_log WHERE first_seq > ?",
        sealedThrough(sql),
      )
      .toArray()[0];
    const seg = sql
      .exec<{ n: number; first: number | null }>(
        "SELECT COUNT(*) AS n, MIN(first_seq) AS first FROM segments",
      )
      .toArray()[0];
    const oldest = seg?.first ?? hot?.first ?? null;
    return {
      headSeq: this.#headSeq,
      headTimeUs: this.#lastTimeUs,
      oldestSeq: oldest,
      trimmedThrough: retainedFloor(sql, this.#config.firstSeq),
      hotRows: hot?.n ?? 0,
      hotBytes: this.#hotBytes,
      segments: seg?.n ?? 0,
      writable: true,
    };
  }

  /** The status page's view of the log, and the Fanouts that have consumers (by name). */
  async statusSummary(): Promise<{ log: LogSummary; fanouts: string[] }> {
    // not this.getLogState(): a call through the prototype is metered as a request
    const state = this.#logState();
    const sql = this.ctx.storage.sql;
    return {
      log: {
        headSeq: state.headSeq,
        oldestSeq: state.oldestSeq,
        oldestMs: oldestEventMs(sql),
        writable: state.writable,
        hotRows: state.hotRows,
        hotBytes: state.hotBytes,
        segments: state.segments,
        newestSegments: newestSegmentsShown(sql),
      },
      fanouts: [...this.#fanouts],
    };
  }

  /** What a replaying reader positioned after `afterSeq` reads next (see hot-log.ts readLog). */
  async readLog(afterSeq: number, maxBytes: number): Promise<LogRead> {
    return readLog(
      this.ctx.storage.sql,
      afterSeq,
      maxBytes,
      this.#headSeq,
      this.#config.firstSeq,
      segmentKey,
    );
  }

  /**
   * Where a Jetstream time cursor starts: the seq just before the first event sequenced at or
   * after `us` (unix µs, sequence/time-index.ts), never before the retained floor; null when
   * nothing stored is that recent (the consumer starts live).
   */
  async jetstreamSeqBefore(us: number): Promise<number | null> {
    const sql = this.ctx.storage.sql;
    const seq = seqBeforeTime(sql, us);
    return seq === null ? null : Math.max(seq, retainedFloor(sql, this.#config.firstSeq));
  }

  /** A page of the segment index: the sealed segments holding every seq > afterSeq (GET /segments). */
  async listSegments(afterSeq: number, limit: number): Promise<SegmentPage> {
    return readSegmentPage(this.ctx.storage.sql, afterSeq, limit);
  }

  /** A Fanout with consumers asks to be fed live batches. */
  async registerFanout(name: string): Promise<{ headSeq: number }> {
    this.#deliveries.registered(name);
    if (!this.#fanouts.has(name)) {
      this.#fanouts.add(name);
      this.ctx.storage.sql.exec("INSERT OR IGNORE INTO fanouts (name) VALUES (?)", name);
    }
    return { headSeq: this.#headSeq };
  }

  /** The Fanouts this Sequencer feeds: global shards and region heads (`/admin/fanout`). */
  async listFanouts(): Promise<string[]> {
    return [...this.#fanouts];
  }

  /** Seals now if anything is waiting (used by tests and the admin). */
  async sealNow(): Promise<SealOutcome> {
    return this.#seal(true);
  }

  override async alarm(): Promise<void> {
    try {
      await this.#seal();
      await expireSegments(
        this.ctx.storage,
        this.env.EVENT_LOG,
        Date.now() - this.#config.replayWindowMs,
      );
    } finally {
      await this.ctx.storage.setAlarm(Date.now() + MAINTENANCE_INTERVAL_MS);
    }
  }

  #commit(requests: readonly AppendRequest[]): AppendResult[] {
    const { results, rows, headSeq, lastTimeUs } = appendGroup(
      this.ctx.storage,
      requests,
      {
        headSeq: this.#headSeq,
        hostCursors: this.#hostCursors,
        hostEpochs: this.#hostEpochs,
        takedowns: this.#takedowns,
        lastTimeUs: this.#lastTimeUs,
      },
      Date.now(),
    );
    this.#headSeq = headSeq;
    this.#lastTimeUs = lastTimeUs;
    for (const result of results)
      for (const [host, seq] of Object.entries(result.hostCursors))
        this.#hostCursors.set(host, seq);
    // every registered Fanout is fed, in order, without making appends wait for them
    // (fanout/delivery-queues.ts: one delivery in flight per Fanout, over a session where the rate
    // pays, batches merged meanwhile, a queue past 16 MB dropped and read back from storage)
    for (const row of rows) {
      this.#hotBytes += row.records.byteLength;
      this.#deliveries.push(this.#fanouts, {
        records: row.records,
        firstSeq: row.firstSeq,
        lastSeq: row.lastSeq,
        anchors: [{ firstSeq: row.firstSeq, firstUs: row.firstUs }],
      });
    }
    if (this.#hotBytes >= this.#config.segmentMaxBytes) void this.#seal();
    return results;
  }

  async #seal(force = false): Promise<SealOutcome> {
    if (this.#sealing) return this.#sealing;
    this.#sealing = (async () => {
      try {
        let last: SealOutcome = { sealed: false };
        for (;;) {
          const outcome = await sealSegment({
            storage: this.ctx.storage,
            bucket: this.env.EVENT_LOG,
            maxBytes: this.#config.segmentMaxBytes,
            sealOlderThanMs: force
              ? Number.POSITIVE_INFINITY
              : Date.now() - this.#config.segmentMaxAgeMs,
          });
          if (!outcome.sealed) return last;
          last = outcome;
          this.#hotBytes = hotLogBytes(this.ctx.storage.sql);
        }
      } finally {
        this.#sealing = null;
      }
    })();
    return this.#sealing;
  }

  /**
   * Tells every registered Fanout this instance's head: deliveries the previous instance had
   * queued died with it, and on a quiet relay no later delivery would reveal the gap before the
   * Fanout's watchdog (30-60 s). One request per Fanout per start; not awaited, and a Fanout
   * that misses it still has its watchdog.
   */
  #announceStart(): void {
    for (const name of this.#fanouts)
      fanoutStub(this.env, name)
        .deliveriesLost(this.#headSeq)
        .catch((err) =>
          console.warn(
            JSON.stringify({ msg: "fanout start notice failed", fanout: name, error: String(err) }),
          ),
        );
  }

  #unregisterFanout(name: string): void {
    if (!this.#fanouts.delete(name)) return;
    this.ctx.storage.sql.exec("DELETE FROM fanouts WHERE name = ?", name);
  }
}
