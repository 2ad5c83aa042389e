import { DurableObject } from "cloudflare:workers";
import { type Config, readConfig } from "../config";
import type { Env } from "../env";
import { IdentityCache } from "../identity/identity-cache";
import { identityMoves } from "../identity/identity-moves";
import type { PlcSourceHealth } from "../identity/plc-sources";
import { meterObject } from "../metering/meter";
import { DropLog, opsLog } from "../ops-log";
import { ProtocolError } from "../protocol/errors";
import {
  canonicalEventFrame,
  decodeFrame,
  type Frame,
  frameDid,
  isSequencedFrame,
} from "../protocol/frame";
import { peekEventDid } from "../protocol/frame-did";
import { readFrameSeq } from "../protocol/seq-rewrite";
import { isValidDid } from "../protocol/syntax";
import { AppendClient } from "../sequence/append-client";
import type { IngestEvent } from "../sequence/hot-log";
import { CounterHistory, type IngesterRates, ingesterRates } from "../status/rate-history";
import { RECENT_MINUTES } from "../status/summary";
import { hostDirectoryStub, hostIngesterStub, repoIndexStub, sequencerStub } from "../stubs";
import { moveHost } from "../xrpc/ingesters";
import { reconnectDelayMs } from "./backoff";
import { FrameQueue } from "./frame-queue";
import { adoptedRecord, type HandOver, newestState, previousIngesters } from "./hand-over";
import {
  applyNewerHosts,
  type HostLimits,
  type HostRecord,
  type HostReport,
  loadHosts,
  newHostRecord,
  prepareHostsTable,
  saveHosts,
} from "./host-record";
import { isLoopbackHostname } from "./hostname";
import { IdentityPrefetch } from "./identity-prefetch";
import { intakeVerdict, objectHasRoom, queuedCost } from "./intake";
import { ingesterObjectName, repoIndexShard } from "./partition";
import { newRateWindow, type RateWindow, reviewPlacement } from "./placement";
import { fullBucket, type TokenBucket, take, waitForTokens } from "./rate-limit";
import { type RepoState, RepoStateStore } from "./repo-state";
import { openUpstream } from "./upstream";
import { type IdentityMoves, validateEvent } from "./validate";

// A HostIngester carries one host (pinned) or a shard of small hosts. Per host it holds the
// upstream socket, processes frames strictly in order (a promise chain per host), batches the
// accepted ones to the Sequencer, and advances the persisted upstream cursor only after the
// Sequencer has acknowledged the batch. The alarm is the watchdog: reconnects after drops and
// evictions, notices stalls, puts silent hosts to sleep (idle) and wakes them for a sweep.

const BATCH_MAX_BYTES = 1_000_000;
const WATCHDOG_INTERVAL_MS = 30_000;
/** How often an idle host is woken to catch up by cursor, in case its requestCrawl ping is lost. */
const IDLE_SWEEP_INTERVAL_MS = 30 * 60 * 1000;
const RATE_BURST_SECONDS = 2;
/** How long a host waits when the Sequencer is behind, before it is read again. */
const PENDING_FULL_PAUSE_MS = 1_000;
/** Frames a host's queue is processed for before the event loop gets a turn (#pump). */
const PUMP_YIELD_EVERY = 64;

type Session = {
  ws: WebSocket;
  /** Frames taken and not yet processed, oldest first (the one being processed is not in it). */
  frames: FrameQueue;
  /** Whether #pump is working through `frames`. */
  pumping: boolean;
  /** Frames taken and not yet finished (those in `frames` and the one being processed). */
  queued: number;
  /** Their cost against the queue limits (intake.ts queuedCost). */
  queuedBytes: number;
  lastSeqOnSocket: number;
  /** Abandoned (ban, release, reset, stall): queued frames are not processed. */
  closing: boolean;
  /** No longer taking frames (throttled): queued ones are still processed, then it reconnects. */
  draining: boolean;
  stallRetried: boolean;
};

/** An accepted event on its way to the Sequencer, with the account state it leads to. */
type PendingEvent = { event: IngestEvent; next: RepoState | null };

const MAX_INHERIT_CHECKED = 100_000;
/** Clock skew allowed between a host's event times and ours (replay of a new host, below). */
const SUBSCRIPTION_SKEW_MS = 60_000;
/** How long to wait before asking the Sequencer again for a host's cursor after a failure. */
const CURSOR_RETRY_MS = 5_000;

export type IngesterQueueStats = {
  queuedBytes: number;
  highWaterBytes: number;
  /** INGEST_QUEUE_MAX_BYTES: the limit past which hosts stop being read. */
  maxBytes: number;
  /** Hosts stopped because the queue was full, waiting for room. */
  waitingForRoom: number;
};

export type CrawlOptions = {
  pinned: boolean;
  limits: HostLimits;
  /** A hand-over from another object: its record of the host, where to resume, whom to inherit from. */
  handOver?: HandOver;
  /** Placed on its own object by automatic placement (which may move it back), not an admin. */
  autoPinned?: boolean;
};

/** What requestCrawl sets on a host record: a crawl that changes none of it writes no row. */
function crawlSettings(host: HostRecord): string {
  return JSON.stringify([
    host.status,
    host.limits,
    host.pinned,
    host.stopped,
    host.failures,
    host.nextAttemptMs,
  ]);
}

export class HostIngester extends DurableObject<Env> {
  readonly #config: Config;
  #hosts = new Map<string, HostRecord>();
  readonly #sessions = new Map<string, Session>();
  /**
   * Per host, the highest upstream seq fully processed (accepted into `#pending` or dropped).
   * Kept across reconnects: a reconnect resumes from here, the persisted cursor only moves here
   * once the Sequencer has acknowledged what is pending.
   */
  readonly #processed = new Map<string, number>();
  /**
   * Per host, the highest upstream seq the Sequencer has acknowledged (everything at or below it
   * is sequenced or was dropped). Becomes the persisted cursor at the next report, in the same
   * transaction as the account state of those events.
   */
  readonly #acked = new Map<string, number>();
  /** Per host, frames taken since its placement was last reviewed (automatic placement). */
  readonly #rateWindows = new Map<string, RateWindow>();
  /** Accounts whose handed-over state was already compared with the local one (per wake). */
  readonly #inheritChecked = new Set<string>();
  /** Per host, consecutive stalls (a dependency failed on a frame that was not skipped). */
  readonly #stallRetries = new Map<string, number>();
  /** Connects in progress: a second caller waits for the first, never opens a second socket. */
  readonly #connecting = new Map<string, Promise<void>>();
  /** Hosts being handed to another object: none of their sockets may open here again. */
  readonly #leaving = new Set<string>();
  /** Hosts whose cursor or counters changed since they were last written. */
  readonly #dirtyHosts = new Set<string>();
  /** Per host, kept across reconnects so that a throttled host cannot reset its budget. */
  readonly #buckets = new Map<string, TokenBucket>();
  #identity!: IdentityCache;
  /** Look-ups for the accounts of queued frames, ahead of their validation. */
  #prefetch!: IdentityPrefetch;
  readonly #identityMoves: IdentityMoves;
  #repos!: RepoStateStore;
  #pending: PendingEvent[] = [];
  #pendingBytes = 0;
  /** Bytes of frames waiting for validation, all hosts together (ingest/intake.ts). */
  #queuedBytes = 0;
  /** The most #queuedBytes has been since this object was loaded. */
  #queuedBytesHighWater = 0;
  /** Hosts stopped because the object's queue was full: read again once it has room. */
  readonly #waitingForRoom = new Set<string>();
  #flushTimer: ReturnType<typeof setTimeout> | null = null;
  #flushing: Promise<void> | null = null;
  #lastReportMs = 0;
  #deferredReport: ReturnType<typeof setTimeout> | null = null;
  #name: string | null = null;
  /** Drop lines for operators, at most one per host and reason per 10 s (ops-log.ts). */
  readonly #drops = new DropLog();
  /**
   * Each host's counters per minute, for the status pages. In memory only (no row): this object
   * stays awake while it holds sockets, which is while its hosts send anything to chart.
   */
  readonly #history = new CounterHistory();
  readonly #startedMs = Date.now();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    meterObject(this, ctx, env, "HostIngester");
    this.#config = readConfig(env);
    this.#identityMoves = identityMoves(env, this.#config.repoIndexShards);
    ctx.blockConcurrencyWhile(async () => {
      prepareHostsTable(ctx.storage);
      this.#hosts = loadHosts(ctx.storage.sql);
      this.#identity = new IdentityCache(ctx.storage.sql, {
        plcUrls: this.#config.plcUrls,
        plcBackoff: this.#config.plcBackoff,
        devMode: this.#config.devMode,
        staleGraceMs: this.#config.identityStaleGraceMs,
      });
      this.#prefetch = new IdentityPrefetch(this.#identity);
      this.#repos = new RepoStateStore(ctx.storage);
      // cursors and counters written since the hosts' rows ride in the account-state deltas
      applyNewerHosts(this.#hosts, this.#repos.replayedHosts);
      this.#name = (await ctx.storage.get<string>("name")) ?? null;
      // after an eviction or deploy, sockets are gone: the watchdog reconnects hosts that were
      // connected soon, not at its next regular tick
      const wasConnected = [...this.#hosts.values()].some(
        (h) => (h.status === "active" || h.status === "throttled") && !h.stopped,
      );
      // ...and hosts that INGEST_SHARDS now maps elsewhere are handed over at that tick
      const misplaced = [...this.#hosts.values()].some((h) => this.#belongsTo(h) !== this.#name);
      const alarm = await ctx.storage.getAlarm();
      const soon = Date.now() + 1_000;
      if (this.#hosts.size > 0 && (alarm === null || ((wasConnected || misplaced) && alarm > soon)))
        await ctx.storage.setAlarm(soon);
    });
  }

  // ---- RPC ---------------------------------------------------------------------------------

  /** Starts or resumes ingestion from a host (requestCrawl). Idempotent. */
  async crawl(objectName: string, hostname: string, options: CrawlOptions): Promise<HostReport> {
    await this.#rememberName(objectName);
    let host = this.#hosts.get(hostname);
    const before = host ? crawlSettings(host) : null;
    if (!host) {
      const handOver = options.handOver;
      host = handOver?.record
        ? adoptedRecord(handOver.record, handOver.from, objectName)
        : newHostRecord(hostname, options.limits, options.pinned);
      // not held there (a crash mid-move): its accounts' state may still be
      if (handOver && !handOver.record && handOver.from !== objectName)
        host.previousIngesters = [handOver.from];
      host.autoPinned = options.pinned && (options.autoPinned ?? host.autoPinned === true);
      this.#hosts.set(hostname, host);
      this.#log(handOver ? "host handed over" : "host added", {
        hostname,
        from: handOver?.from,
        cursor: host.cursor,
      });
    }
    if (host.status === "banned") return this.#report(host);
    // the Worker's choice (host-limits.ts) on every crawl: a change of TRUSTED_HOST_SUFFIXES or
    // of the defaults reaches a known host at its next requestCrawl; an admin's limits still win
    host.limits = options.limits;
    host.pinned = options.pinned;
    host.stopped = false;
    host.failures = 0;
    if (host.status !== "throttled") this.#setStatus(host, "active", "requestCrawl");
    host.nextAttemptMs = null;
    // a new host's row at once; a known one's only when the crawl changed it (a PDS pings
    // requestCrawl often, and a host already active with the same limits has nothing new)
    if (before === null || before !== crawlSettings(host)) saveHosts(this.ctx.storage, [host]);
    if (!this.#sessions.has(hostname) && host.status === "active") await this.#connect(host);
    await this.#ensureAlarm(Date.now() + WATCHDOG_INTERVAL_MS);
    return this.#report(host);
  }

  /** Disconnects a host at once and keeps it down (admin ban). */
  async ban(hostname: string): Promise<void> {
    const host = this.#hosts.get(hostname);
    if (!host) return;
    this.#close(hostname, "banned");
    host.lastError = "banned by an admin";
    this.#setStatus(host, "banned", host.lastError);
    saveHosts(this.ctx.storage, [host]);
  }

  /**
   * Hands a host over to another object (pin/unpin, or INGEST_SHARDS changed): returns its record
   * with the cursor of everything processed here, or null if this object does not hold it.
   */
  async release(hostname: string): Promise<HostRecord | null> {
    const record = await this.#letGo(hostname);
    if (record) this.#forget(hostname);
    return record;
  }

  /**
   * Takes a host handed over by the object that held it (INGEST_SHARDS changed) as it was there:
   * a host that was idle, offline, stopped or banned stays so; an active one connects from the
   * handed-over cursor. Idempotent: a host already held here (a retry after a crash, or a
   * requestCrawl that moved it first) is kept as it is.
   */
  async adopt(
    objectName: string,
    handOver: HandOver & { record: HostRecord },
  ): Promise<HostReport> {
    await this.#rememberName(objectName);
    const held = this.#hosts.get(handOver.record.hostname);
    if (held) return this.#report(held);
    const host = adoptedRecord(handOver.record, handOver.from, objectName);
    this.#hosts.set(host.hostname, host);
    saveHosts(this.ctx.storage, [host]);
    this.#log("host handed over", {
      hostname: host.hostname,
      from: handOver.from,
      cursor: host.cursor,
    });
    if (host.status === "active" && !host.stopped) await this.#connect(host);
    await this.#ensureAlarm(
      Math.min(host.nextAttemptMs ?? Number.POSITIVE_INFINITY, Date.now() + WATCHDOG_INTERVAL_MS),
    );
    return this.#report(host);
  }

  async unban(hostname: string): Promise<void> {
    const host = this.#hosts.get(hostname);
    if (host?.status !== "banned") return;
    this.#setStatus(host, "idle", "unbanned by an admin");
    host.lastError = null;
    saveHosts(this.ctx.storage, [host]);
  }

  /** Forgets the upstream cursor (after a PDS reset its seq): the next connect starts live. */
  async resetCursor(hostname: string): Promise<void> {
    const host = this.#hosts.get(hostname);
    if (!host) return;
    this.#close(hostname, "cursor reset");
    await this.#connecting.get(hostname);
    this.#close(hostname, "cursor reset");
    // events of the old numbering still pending are sent first, then the Sequencer forgets the
    // host's cursor: in this order, nothing pending can raise it again after the reset
    await this.#flush();
    await sequencerStub(this.env).resetHostCursor(hostname);
    this.#processed.delete(hostname);
    this.#acked.delete(hostname);
    host.cursor = null;
    host.subscribedAtMs = null; // the next live connect fixes it afresh
    host.skipBeforeMs = null;
    host.stopped = false;
    if (host.status !== "banned") this.#setStatus(host, "active", "cursor reset by an admin");
    saveHosts(this.ctx.storage, [host]);
    if (host.status === "active") await this.#connect(host);
  }

  async setLimits(hostname: string, limits: HostLimits): Promise<void> {
    const host = this.#hosts.get(hostname);
    if (!host) return;
    host.limits = limits;
    saveHosts(this.ctx.storage, [host]);
  }

  /**
   * Forgets a cached DID document: another ingester saw the account's `#identity` name a new
   * PDS, so this object's copy may still name the old one (see HostDirectory.identityMoved).
   */
  async invalidateIdentity(did: string): Promise<void> {
    this.#identity.invalidate(did);
  }

  /** How this object's PLC sources are faring (in memory: each ingester learns on its own). */
  async plcSourceHealth(): Promise<PlcSourceHealth[]> {
    return this.#identity.resolver?.plcSources.health() ?? [];
  }

  /** The stored state of accounts (for the object a host was handed over to). */
  async exportRepoStates(dids: string[]): Promise<RepoState[]> {
    return dids.flatMap((did) => this.#repos.get(did) ?? []);
  }

  async getHost(hostname: string): Promise<HostReport | null> {
    const host = this.#hosts.get(hostname);
    return host ? this.#report(host) : null;
  }

  /** The status pages' events/s per minute of this object's hosts (host-views.ts). */
  async statusRates(hostname?: string): Promise<IngesterRates> {
    const hosts = hostname === undefined ? [...this.#hosts.keys()] : [hostname];
    return ingesterRates(this.#history, hosts, Date.now(), this.#startedMs, RECENT_MINUTES);
  }

  async listHosts(): Promise<HostReport[]> {
    return [...this.#hosts.values()].map((h) => this.#report(h));
  }

  /** Frames waiting for validation over all hosts, now and at most since the object was loaded. */
  async queueStats(): Promise<IngesterQueueStats> {
    return {
      queuedBytes: this.#queuedBytes,
      highWaterBytes: this.#queuedBytesHighWater,
      maxBytes: this.#config.ingestQueueMaxBytes,
      waitingForRoom: this.#waitingForRoom.size,
    };
  }

  /** Sends whatever is pending to the Sequencer now (tests and shutdown). */
  async flush(): Promise<void> {
    await this.#flush();
  }

  // ---- connection lifecycle -----------------------------------------------------------------

  /** Opens the host's socket unless one is open or opening: one socket per host, always. */
  async #connect(host: HostRecord): Promise<void> {
    if (this.#sessions.has(host.hostname) || this.#leaving.has(host.hostname)) return;
    const inFlight = this.#connecting.get(host.hostname);
    if (inFlight) return inFlight;
    const attempt = this.#openSession(host).finally(() => this.#connecting.delete(host.hostname));
    this.#connecting.set(host.hostname, attempt);
    return attempt;
  }

  async #openSession(host: HostRecord): Promise<void> {
    if (isLoopbackHostname(host.hostname) && !this.#config.devMode) {
      host.lastError = "loopback hosts are only crawled in DEV_MODE";
      this.#setStatus(host, "offline", host.lastError);
      saveHosts(this.ctx.storage, [host]);
      return;
    }
    host.lastAttemptMs = Date.now();
    let ws: WebSocket;
    const cursor = await this.#resumePoint(host);
    if (cursor === undefined) return; // the position is unknown for now: retried, never guessed
    try {
      ws = await openUpstream(host.hostname, cursor);
    } catch (err) {
      this.#connectionFailed(
        host,
        `connect failed: ${String(err instanceof Error ? err.message : err)}`,
      );
      return;
    }
    if (!this.#mayConnect(host)) {
      // banned, stopped, released or reset while the handshake was in flight
      try {
        ws.close(1000, "no longer wanted");
      } catch {
        // already closed
      }
      return;
    }
    const session: Session = {
      ws,
      frames: new FrameQueue(),
      pumping: false,
      queued: 0,
      queuedBytes: 0,
      lastSeqOnSocket: cursor ?? -1,
      closing: false,
      draining: false,
      stallRetried: false,
    };
    this.#sessions.set(host.hostname, session);
    host.connectedSinceMs = Date.now();
    // live from now: if no frame arrives before a crash, this is where the host is owed from
    const subscribedNow = cursor === null && host.subscribedAtMs == null;
    if (subscribedNow) host.subscribedAtMs = Date.now();
    host.lastEventMs = Date.now();
    const wasActive = host.status === "active";
    if (host.status !== "banned") this.#setStatus(host, "active", "connected");
    // Written at once when a restart must know it: where a live host is owed from, and a host
    // that was not active before (an idle or offline row would not be reconnected soon after a
    // crash). Otherwise the connection times ride in the next report's delta row: a restart
    // opens a new socket and sets them afresh, so nothing reads them from the row.
    if (subscribedNow || !wasActive) saveHosts(this.ctx.storage, [host]);
    else this.#dirtyHosts.add(host.hostname);
    this.#log("connected", { hostname: host.hostname, cursor });
    ws.addEventListener("message", (event) => this.#onMessage(host.hostname, session, event.data));
    ws.addEventListener("close", (event) =>
      this.#onClosed(host.hostname, session, `closed ${event.code} ${event.reason}`),
    );
    ws.addEventListener("error", () => this.#onClosed(host.hostname, session, "socket error"));
  }

  /**
   * Where to resume a host: what this object processed, else what the Sequencer acknowledged,
   * else the persisted cursor (which matches the persisted account state). Only a host with no
   * position anywhere starts live. `undefined`: the Sequencer could not be asked; try later.
   */
  async #resumePoint(host: HostRecord): Promise<number | null | undefined> {
    const known =
      this.#processed.get(host.hostname) ?? this.#acked.get(host.hostname) ?? host.cursor;
    if (known !== null) return known;
    try {
      // this object has never read the host (new, or its state was handed over without one)
      const sequenced = await sequencerStub(this.env).getHostCursor(host.hostname);
      if (sequenced !== null || host.subscribedAtMs == null) return sequenced;
      // Subscribed live before, but no frame ever arrived, so no position was fixed: what it
      // sent since (while we were down) is owed. Read it from the start of its log and skip
      // what it wrote before we first subscribed, by the events' own times.
      host.skipBeforeMs ??= host.subscribedAtMs - SUBSCRIPTION_SKEW_MS;
      return 0;
    } catch (err) {
      host.lastError = `cannot read the host's cursor from the Sequencer: ${String(err)}`;
      host.nextAttemptMs = Date.now() + CURSOR_RETRY_MS;
      this.#dirtyHosts.add(host.hostname);
      this.#log("cursor lookup failed; will retry", {
        hostname: host.hostname,
        error: String(err),
      });
      void this.#ensureAlarm(host.nextAttemptMs);
      return undefined;
    }
  }

  #mayConnect(host: HostRecord): boolean {
    return (
      this.#hosts.get(host.hostname) === host &&
      host.status !== "banned" &&
      host.status !== "offline" &&
      !host.stopped &&
      !this.#sessions.has(host.hostname)
    );
  }

  #connectionFailed(host: HostRecord, error: string): void {
    host.failures += 1;
    host.lastError = error;
    host.connectedSinceMs = null;
    if (host.failures >= this.#config.hostMaxFailures) {
      this.#setStatus(host, "offline", `${host.failures} failed connections: ${error}`);
      host.nextAttemptMs = null;
    } else {
      host.nextAttemptMs = Date.now() + reconnectDelayMs(host.failures);
    }
    saveHosts(this.ctx.storage, [host]);
    void this.#ensureAlarm(host.nextAttemptMs ?? Date.now() + WATCHDOG_INTERVAL_MS);
  }

  #onClosed(hostname: string, session: Session, why: string): void {
    // a draining session closed its socket itself; it reconnects once its queue is processed
    if (this.#sessions.get(hostname) !== session || session.draining) return;
    this.#sessions.delete(hostname);
    const host = this.#hosts.get(hostname);
    if (!host || session.closing) return;
    // resume from what was processed (pending events are still on their way to the Sequencer)
    this.#connectionFailed(host, `upstream ${why}`);
  }

  /** Closes a host's socket on purpose; the cursor stays where processing got to. */
  #close(hostname: string, reason: string): void {
    const session = this.#sessions.get(hostname);
    if (!session) return;
    session.closing = true;
    this.#sessions.delete(hostname);
    const host = this.#hosts.get(hostname);
    if (host) host.connectedSinceMs = null;
    try {
      session.ws.close(1000, reason.slice(0, 100));
    } catch {
      // already closed
    }
  }

  // ---- frames -------------------------------------------------------------------------------

  #onMessage(hostname: string, session: Session, data: unknown): void {
    // only the host's current socket is read (a stale one may still deliver a few frames)
    if (session.closing || session.draining || this.#sessions.get(hostname) !== session) return;
    const host = this.#hosts.get(hostname);
    if (!host) return;
    if (!(data instanceof ArrayBuffer)) {
      this.#countDrop(hostname, "InvalidEvent:TextFrame");
      return;
    }
    const bytes = new Uint8Array(data);
    this.#notePosition(hostname, bytes);
    // Slowing a host down never throws work away: a frame is either kept (queued, and then
    // always processed) or not taken at all; the host is read again from the last frame kept.
    const cost = queuedCost(bytes.byteLength);
    const intake = intakeVerdict(cost, {
      hostFrames: session.queued,
      hostBytes: session.queuedBytes,
      objectBytes: this.#queuedBytes,
      objectMaxBytes: this.#config.ingestQueueMaxBytes,
      pendingBytes: this.#pendingBytes,
    });
    if (!intake.take) {
      if (intake.full === "sequencer")
        this.#stopTaking(hostname, session, "the Sequencer is behind", PENDING_FULL_PAUSE_MS);
      else if (intake.full === "host")
        this.#stopTaking(hostname, session, "validation is behind", 0);
      else {
        this.#waitingForRoom.add(hostname);
        this.#stopTaking(hostname, session, "the ingester's queue is full", 0);
      }
      return;
    }
    const now = Date.now();
    const perSecond = host.limits.eventsPerSecond;
    const burst = perSecond * RATE_BURST_SECONDS;
    const taken = take(
      this.#buckets.get(hostname) ?? fullBucket(burst, now),
      now,
      perSecond,
      burst,
    );
    this.#buckets.set(hostname, taken.bucket);
    if (!taken.ok) {
      this.#stopTaking(
        hostname,
        session,
        `over ${perSecond} events/s`,
        waitForTokens(taken.bucket, perSecond, perSecond),
      );
      return;
    }
    const window = this.#rateWindows.get(hostname) ?? newRateWindow(now);
    window.frames++;
    this.#rateWindows.set(hostname, window);
    // a frame that waits behind others: its account's document is looked up meanwhile
    if (session.queued > 0) this.#prefetchIdentity(hostname, bytes);
    session.queued++;
    session.queuedBytes += cost;
    this.#queuedBytes += cost;
    this.#queuedBytesHighWater = Math.max(this.#queuedBytesHighWater, this.#queuedBytes);
    session.frames.push(bytes);
    if (!session.pumping) void this.#pump(hostname, session);
  }

  /**
   * Processes a host's queued frames one at a time, in order, until none is left. Every
   * PUMP_YIELD_EVERY frames it lets the event loop turn: frames whose identity is known are
   * validated without awaiting anything, and without a turn the object would answer nothing
   * else (the Sequencer's acknowledgements, RPCs, alarms) until the whole queue was done.
   */
  async #pump(hostname: string, session: Session): Promise<void> {
    session.pumping = true;
    try {
      let sinceTurn = 0;
      for (let bytes = session.frames.shift(); bytes; bytes = session.frames.shift()) {
        try {
          await this.#handleFrame(hostname, session, bytes);
        } catch (err) {
          // never skip a frame because something failed on our side: stop and read it again
          this.#log("frame handling failed", { hostname, error: String(err) });
          if (this.#sessions.get(hostname) === session && !session.closing)
            this.#stall(hostname, `frame handling failed: ${String(err).slice(0, 120)}`);
        }
        this.#frameDone(hostname, session, queuedCost(bytes.byteLength));
        if (++sinceTurn >= PUMP_YIELD_EVERY && session.frames.length > 0) {
          sinceTurn = 0;
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
      }
    } finally {
      session.pumping = false;
    }
  }

  #frameDone(hostname: string, session: Session, cost: number): void {
    session.queued--;
    session.queuedBytes -= cost;
    this.#queuedBytes -= cost;
    if (session.draining && session.queued === 0) this.#drained(hostname, session);
    if (this.#waitingForRoom.size > 0 && this.#hasRoom()) this.#resumeWaitingForRoom();
  }

  /**
   * Stops taking frames from a host without dropping what is queued: the socket is closed, the
   * queue is processed, and the host is read again from the last frame kept, `resumeInMs`
   * after it was stopped and never before its queue has drained.
   */
  #stopTaking(hostname: string, session: Session, why: string, resumeInMs: number): void {
    const host = this.#hosts.get(hostname);
    if (!host) return;
    session.draining = true;
    try {
      session.ws.close(1000, "throttled");
    } catch {
      // already closed
    }
    host.lastError = `throttled: ${why}; resumes by cursor`;
    this.#setStatus(host, "throttled", why);
    host.nextAttemptMs = Date.now() + resumeInMs;
    this.#dirtyHosts.add(hostname);
    if (session.queued === 0) this.#drained(hostname, session);
  }

  #drained(hostname: string, session: Session): void {
    if (this.#sessions.get(hostname) !== session) return;
    this.#sessions.delete(hostname);
    const host = this.#hosts.get(hostname);
    if (!host) return;
    host.connectedSinceMs = null;
    const at = Math.max(Date.now(), host.nextAttemptMs ?? 0);
    void this.#ensureAlarm(Math.max(at, Date.now() + 1_000));
    // quick resumption without waiting for the watchdog (the alarm above is the safety net)
    setTimeout(() => this.#resumeThrottled(hostname, host), Math.max(0, at - Date.now()));
  }

  /** Reads a throttled host again, unless it waits for room in the object's queue. */
  #resumeThrottled(hostname: string, host: HostRecord): void {
    if (this.#waitingForRoom.has(hostname)) {
      if (!this.#hasRoom()) return; // #resumeWaitingForRoom reads it once there is room
      this.#waitingForRoom.delete(hostname);
    }
    if (host.status !== "throttled" || this.#hosts.get(hostname) !== host) return;
    if (this.#sessions.has(hostname)) return;
    this.#setStatus(host, "active", "throttle over");
    void this.#connect(host);
  }

  #hasRoom(): boolean {
    return objectHasRoom(this.#queuedBytes, this.#config.ingestQueueMaxBytes);
  }

  /** The object's queue has room again: hosts stopped for it, whose own queue drained, resume. */
  #resumeWaitingForRoom(): void {
    for (const hostname of [...this.#waitingForRoom]) {
      const host = this.#hosts.get(hostname);
      if (!host) {
        this.#waitingForRoom.delete(hostname);
        continue;
      }
      // a host still processing its own queue resumes from #drained
      if (!this.#sessions.has(hostname)) this.#resumeThrottled(hostname, host);
    }
  }

  /**
   * A host subscribed at its current offset has no cursor until a frame is processed; if we
   * stopped reading before that, reconnecting "live" would skip what it already sent. So the
   * first frame we receive fixes the resume point just before it (a shallow read of its seq).
   */
  #notePosition(hostname: string, bytes: Uint8Array): void {
    const host = this.#hosts.get(hostname);
    if (!host || host.cursor !== null || this.#processed.has(hostname)) return;
    try {
      const seq = readFrameSeq(bytes);
      if (seq === null || seq <= 0) return;
      this.#processed.set(hostname, seq - 1);
      // persisted at once (one row, once per new host): a crash before anything is sequenced
      // must not make the host look new again and resume live past what it already sent
      host.cursor = seq - 1;
      saveHosts(this.ctx.storage, [host]);
    } catch {
      // a malformed first frame: the next one sets the position
    }
  }

  /**
   * Starts the look-up of a queued frame's account (identity-prefetch.ts). The DID is read from
   * the frame's CBOR headers (protocol/frame-did.ts) without decoding it: the frame is decoded
   * once, when its turn comes, and a decoded frame (~4 KB of objects, more than twice a typical
   * frame's bytes) is not kept while up to 5,000 frames per host wait in the queue.
   */
  #prefetchIdentity(hostname: string, bytes: Uint8Array): void {
    const did = peekEventDid(bytes);
    if (did !== null && isValidDid(did)) this.#prefetch.want(did, hostname);
  }

  async #handleFrame(hostname: string, session: Session, bytes: Uint8Array): Promise<void> {
    if (session.closing || this.#sessions.get(hostname) !== session) return;
    const host = this.#hosts.get(hostname);
    if (!host || host.status === "banned") return;
    let frame: Frame;
    try {
      frame = decodeFrame(bytes);
    } catch (err) {
      const name = err instanceof ProtocolError ? err.name : "InvalidFrame";
      this.#countDrop(hostname, `InvalidEvent:${name}`, {
        detail: `${bytes.byteLength} bytes: ${String(err).slice(0, 200)}`,
      });
      return;
    }
    const now = Date.now();
    host.lastEventMs = now;
    session.stallRetried = false;
    if (frame.kind === "error")
      return this.#onUpstreamError(host, frame.body.error, frame.body.message);
    if (frame.kind === "info") {
      host.lastError = `upstream #info ${frame.body.name}${frame.body.message ? `: ${frame.body.message}` : ""}`;
      this.#log("upstream info", { hostname, name: frame.body.name });
      return;
    }
    if (!isSequencedFrame(frame)) return;
    const seq = frame.body.seq;
    if (seq <= session.lastSeqOnSocket) {
      this.#countDrop(hostname, "SeqNotIncreasing");
      return;
    }
    session.lastSeqOnSocket = seq;
    if (host.skipBeforeMs != null) {
      if (Date.parse(frame.body.time) < host.skipBeforeMs) {
        // written before the relay first subscribed to this host: not owed to consumers
        this.#countDrop(hostname, "BeforeSubscription");
        this.#processed.set(hostname, seq);
        return;
      }
      host.skipBeforeMs = null;
      saveHosts(this.ctx.storage, [host]);
    }
    const did = frameDid(frame);
    const repo = await this.#accountState(host, did);
    if (session.closing || this.#sessions.get(hostname) !== session) return;
    if (!repo && this.#repos.countForHost(hostname) >= host.limits.maxAccounts) {
      this.#countDrop(hostname, "AccountLimit");
      this.#processed.set(hostname, seq);
      return;
    }
    const verdict = await validateEvent(frame, {
      hostname,
      nowMs: now,
      identity: this.#identity,
      repo,
      identityMoves: this.#identityMoves,
    });
    if (session.closing || this.#sessions.get(hostname) !== session) return;
    if (!verdict.accept && verdict.reason === "IdentityUnavailable") {
      // dropping would advance past an event that may be valid: stop here and read it again
      // from the cursor once the identity service answers (the event is not marked processed)
      this.#countDrop(hostname, "IdentityUnavailable");
      this.#stall(
        hostname,
        `identity unavailable for ${verdict.did ?? "an account"}: ${verdict.detail.slice(0, 120)}`,
      );
      return;
    }
    if (verdict.accept) {
      if (verdict.next) this.#repos.setWorking(verdict.next);
      if (verdict.flag) {
        host.counters.flagged = (host.counters.flagged ?? 0) + 1;
        this.#log("repo continuity mismatch", { hostname, did, flag: verdict.flag });
      }
      host.counters.accepted++;
      this.#dirtyHosts.add(hostname);
      // only the fields the lexicon defines are forwarded (protocol/frame.ts)
      const forwarded = canonicalEventFrame(frame);
      this.#pending.push({
        event: { host: hostname, upstreamSeq: seq, frame: forwarded, did },
        next: verdict.next,
      });
      this.#pendingBytes += forwarded.byteLength;
      this.#scheduleFlush();
    } else {
      this.#countDrop(hostname, verdict.reason, {
        did: verdict.did,
        detail: verdict.detail.slice(0, 200),
      });
    }
    this.#processed.set(hostname, seq);
    this.#stallRetries.delete(hostname);
    if (host.failures > 0) {
      // the host delivers events again: earlier failures must not add up over its lifetime
      host.failures = 0;
      this.#dirtyHosts.add(hostname);
    }
  }

  /**
   * The state of an account for validation. On a host handed over from another object (pin,
   * unpin, automatic placement, INGEST_SHARDS changed), the objects it left hold the state that
   * matches the handed-over cursor: the first time each account is met here, the newest of
   * theirs and any local row wins (a local row may be stale, from before an earlier move away).
   */
  async #accountState(host: HostRecord, did: string): Promise<RepoState | undefined> {
    const local = this.#repos.get(did);
    const from = previousIngesters(host).filter((name) => name !== this.#name);
    if (from.length === 0 || this.#inheritChecked.has(did)) return local;
    if (this.#inheritChecked.size >= MAX_INHERIT_CHECKED) this.#inheritChecked.clear();
    this.#inheritChecked.add(did);
    // one request per object the host came from (usually one), once per account and wake
    const exported = await Promise.all(
      from.map((name) => hostIngesterStub(this.env, name).exportRepoStates([did])),
    );
    const inherited = newestState(exported.flat(), host.hostname);
    const current = this.#repos.get(did);
    if (!inherited) return current;
    if (current && (current !== local || current.rev >= inherited.rev)) return current;
    this.#repos.markAcknowledged(inherited);
    return inherited;
  }

  #onUpstreamError(host: HostRecord, error: string, message?: string): void {
    host.lastError = `upstream error ${error}${message ? `: ${message}` : ""}`;
    this.#log("upstream error frame", { hostname: host.hostname, error, message });
    if (error === "FutureCursor") {
      // the PDS is behind our cursor (it lost data or reset): reconnecting would repeat this
      // forever; an admin resets the cursor, or the host's next requestCrawl retries
      this.#close(host.hostname, "FutureCursor");
      this.#setStatus(host, "offline", host.lastError);
      host.stopped = true;
      saveHosts(this.ctx.storage, [host]);
    }
  }

  /**
   * The frame at hand could not be checked (a dependency failed): abandon the socket and its
   * queue and read the host again from that frame, with backoff while it keeps failing.
   */
  #stall(hostname: string, why: string): void {
    const retries = (this.#stallRetries.get(hostname) ?? 0) + 1;
    this.#stallRetries.set(hostname, retries);
    this.#throttle(hostname, why, reconnectDelayMs(retries));
  }

  /** Abandons a host's socket and queue and retries later (the frame at hand is not processed). */
  #throttle(hostname: string, why: string, resumeInMs: number): void {
    const host = this.#hosts.get(hostname);
    const session = this.#sessions.get(hostname);
    if (!host || !session || session.closing) return;
    this.#close(hostname, "throttled");
    host.lastError = `throttled: ${why}`;
    this.#setStatus(host, "throttled", why);
    host.nextAttemptMs = Date.now() + Math.max(1_000, resumeInMs);
    saveHosts(this.ctx.storage, [host]);
    void this.#ensureAlarm(host.nextAttemptMs);
  }

  #countDrop(
    hostname: string,
    reason: string,
    about: { did?: string | null; detail?: string } = {},
  ): void {
    const host = this.#hosts.get(hostname);
    if (!host) return;
    host.counters.dropped[reason] = (host.counters.dropped[reason] ?? 0) + 1;
    this.#dirtyHosts.add(hostname);
    this.#drops.note(hostname, reason, { ...about, ingester: this.#name });
  }

  /** Every change of a host's status goes through here, so operators see each one, with why. */
  #setStatus(host: HostRecord, to: HostRecord["status"], reason: string | null): void {
    if (host.status === to) return;
    opsLog("host_status", {
      hostname: host.hostname,
      from: host.status,
      to,
      reason,
      ingester: this.#name,
    });
    host.status = to;
  }

  // ---- batching to the Sequencer ------------------------------------------------------------

  /** Batches go over one append socket: a message each (1/20 of a request), not a request. */
  readonly #sequencer = new AppendClient(this.env);

  #scheduleFlush(): void {
    if (this.#pendingBytes >= BATCH_MAX_BYTES) {
      void this.#flush();
      return;
    }
    if (this.#flushTimer) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      void this.#flush();
    }, this.#config.ingestBatchWindowMs);
  }

  async #flush(): Promise<void> {
    if (this.#flushing) {
      await this.#flushing;
      if (this.#pending.length === 0) return;
    }
    this.#flushing = this.#flushOnce().finally(() => {
      this.#flushing = null;
    });
    await this.#flushing;
  }

  async #flushOnce(): Promise<void> {
    // every frame processed before this point is either in `events` or was dropped, so once the
    // Sequencer acknowledges, each host's cursor can move to what had been processed
    const pending = this.#pending;
    const processed = new Map(this.#processed);
    this.#pending = [];
    this.#pendingBytes = 0;
    if (pending.length > 0) {
      try {
        const result = await this.#sequencer.append({ events: pending.map((p) => p.event) });
        for (const refused of result.dropped ?? [])
          this.#countDrop(refused.host, refused.reason, {
            detail: `refused by the Sequencer (upstream seq ${refused.upstreamSeq})`,
          });
      } catch (err) {
        // keep them, in order, ahead of anything newer; retried on the next flush
        this.#pending = pending.concat(this.#pending);
        for (const p of pending) this.#pendingBytes += p.event.frame.byteLength;
        this.#log("sequencer append failed; will retry", {
          error: String(err),
          events: pending.length,
        });
        setTimeout(() => void this.#flush(), 1_000);
        return;
      }
    }
    // The Sequencer now holds these events and their upstream seqs (it dedupes by them). The
    // cursor and the account state they produced are written together at the next report
    // (rows written are billed); until then a crash resumes from the older persisted pair.
    for (const p of pending) if (p.next) this.#repos.markAcknowledged(p.next);
    const now = Date.now();
    for (const [hostname, seq] of processed) {
      const host = this.#hosts.get(hostname);
      if (host && this.#acked.get(hostname) !== seq) {
        this.#acked.set(hostname, seq);
        this.#dirtyHosts.add(hostname);
        if (this.#sessions.has(hostname)) this.#reviewPlacement(host, now);
      }
    }
    void this.#reportAll(false);
  }

  // ---- watchdog -----------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    await this.#handOverMisplaced();
    const now = Date.now();
    for (const host of this.#hosts.values()) {
      const session = this.#sessions.get(host.hostname);
      if (session?.draining) continue; // reconnects by itself once its queue is processed
      if (session) this.#reviewPlacement(host, now);
      if (session) {
        const silentMs = now - (host.lastEventMs ?? host.connectedSinceMs ?? now);
        if (silentMs >= this.#config.hostIdleAfterMs) {
          await this.#flush();
          this.#close(host.hostname, "idle");
          this.#setStatus(
            host,
            "idle",
            `no event for ${Math.round(silentMs / 1000)} s: disconnected to save cost`,
          );
          host.lastError = null;
          host.nextAttemptMs = now + IDLE_SWEEP_INTERVAL_MS;
          this.#dirtyHosts.add(host.hostname);
        } else if (silentMs >= this.#config.hostStallAfterMs && !session.stallRetried) {
          // a socket can die without a close event; reconnect once to be sure it is just quiet
          this.#close(host.hostname, "stall check");
          await this.#connect(host);
          const again = this.#sessions.get(host.hostname);
          if (again) again.stallRetried = true;
        }
        continue;
      }
      if (host.status === "banned" || host.stopped) continue;
      if (host.status === "offline") continue;
      const due = host.nextAttemptMs === null || host.nextAttemptMs <= now;
      if (this.#waitingForRoom.has(host.hostname) && !this.#hasRoom()) continue;
      if (
        due &&
        (host.status === "active" || host.status === "throttled" || host.status === "idle")
      ) {
        if (host.status === "throttled") this.#setStatus(host, "active", "throttle over");
        await this.#connect(host);
      }
    }
    this.#drops.flush(this.#name);
    await this.#reportAll(true);
    const next = this.#nextAlarm(now);
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }

  /**
   * Moves a host whose sustained rate calls for it (ingest/placement.ts), reviewed as batches
   * are acknowledged and at each watchdog tick (quiet hosts); never blocks either.
   */
  #reviewPlacement(host: HostRecord, now: number): void {
    const window = this.#rateWindows.get(host.hostname) ?? newRateWindow(now);
    const placement = !host.pinned ? "shared" : host.autoPinned ? "auto" : "admin";
    const review = reviewPlacement(window, now, placement, this.#config.placement);
    this.#rateWindows.set(host.hostname, review.window);
    if (!review.move) return;
    const pinned = review.move === "pin";
    this.#log(pinned ? "busy host moves to its own object" : "quiet host moves back to a shard", {
      hostname: host.hostname,
    });
    void moveHost(this.env, this.#config, host.hostname, pinned, {
      auto: true,
      ...(this.#name ? { from: this.#name } : {}),
      release: (hostname) => this.release(hostname),
    }).catch((err: unknown) =>
      this.#log("automatic placement failed", { hostname: host.hostname, error: String(err) }),
    );
  }

  /** The object the partition rule names for a host under the current INGEST_SHARDS. */
  #belongsTo(host: HostRecord): string {
    return ingesterObjectName(host.hostname, host.pinned, this.#config.ingestShards);
  }

  /**
   * Hands every host the partition rule no longer maps here (INGEST_SHARDS changed) to the
   * object it maps to now, as a pin does: the socket closes, what was processed is flushed and
   * written, and the new object stores the record with that cursor before it connects. Only
   * then is the host forgotten here: a crash in between leaves it in both objects (this one
   * hands it over again at its next tick; the new one keeps what it has), never in neither.
   */
  async #handOverMisplaced(): Promise<void> {
    const self = this.#name;
    if (self === null) return;
    for (const host of [...this.#hosts.values()]) {
      const to = this.#belongsTo(host);
      if (to === self) continue;
      try {
        const record = await this.#letGo(host.hostname);
        if (!record) continue;
        const report = await hostIngesterStub(this.env, to).adopt(to, { from: self, record });
        this.#forget(host.hostname);
        await hostDirectoryStub(this.env).reportHosts([report]);
        this.#log("host moved: the partition rule names another object", {
          hostname: host.hostname,
          to,
          cursor: record.cursor,
        });
      } catch (err) {
        this.#leaving.delete(host.hostname); // stays here, reconnects below; retried next tick
        this.#log("hand-over failed; retried at the next tick", {
          hostname: host.hostname,
          to,
          error: String(err),
        });
      }
    }
  }

  /**
   * Stops a host for a hand-over: no socket opens again here, what was processed is flushed and
   * written with the account state. Returns the record to hand over, its cursor at what was
   * processed; throws if an event of the host is still unacknowledged (the Sequencer failed),
   * since the new object would read past it and the Sequencer then drop it as already seen.
   */
  async #letGo(hostname: string): Promise<HostRecord | null> {
    const host = this.#hosts.get(hostname);
    if (!host) return null;
    this.#leaving.add(hostname);
    this.#close(hostname, "moved to another ingester");
    await this.#connecting.get(hostname);
    this.#close(hostname, "moved to another ingester");
    await this.#flush();
    if (this.#pending.some((p) => p.event.host === hostname)) {
      this.#leaving.delete(hostname);
      throw new Error(`events of ${hostname} are not acknowledged yet; hand-over postponed`);
    }
    // everything processed is now acknowledged (or dropped): hand over from there
    const cursor = this.#processed.get(hostname) ?? this.#acked.get(hostname) ?? host.cursor;
    this.#persist([]);
    return { ...host, cursor, connectedSinceMs: null };
  }

  /** Drops a host handed over: its accounts' state stays, for the new object to inherit. */
  #forget(hostname: string): void {
    this.#close(hostname, "moved to another ingester");
    this.#hosts.delete(hostname);
    this.#processed.delete(hostname);
    this.#acked.delete(hostname);
    this.#rateWindows.delete(hostname);
    this.#leaving.delete(hostname);
    this.ctx.storage.sql.exec("DELETE FROM host_records WHERE hostname = ?", hostname);
  }

  #nextAlarm(now: number): number | null {
    if (this.#sessions.size > 0) return now + WATCHDOG_INTERVAL_MS;
    let next: number | null = null;
    for (const host of this.#hosts.values()) {
      if (host.status === "banned" || host.status === "offline" || host.stopped) continue;
      const at = Math.max(now + 1_000, host.nextAttemptMs ?? now + WATCHDOG_INTERVAL_MS);
      next = next === null ? at : Math.min(next, at);
    }
    return next;
  }

  async #ensureAlarm(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  // ---- reporting ----------------------------------------------------------------------------

  async #reportAll(force: boolean): Promise<void> {
    const now = Date.now();
    const dueInMs = this.#lastReportMs + this.#config.hostReportIntervalMs - now;
    if (!force && dueInMs > 0) {
      // publish what changed since at the end of the interval, not only at the next watchdog tick
      this.#deferredReport ??= setTimeout(() => {
        this.#deferredReport = null;
        void this.#reportAll(false);
      }, dueInMs);
      return;
    }
    this.#lastReportMs = now;
    for (const host of this.#hosts.values())
      this.#history.record(host.hostname, now, host.counters);
    const changedRepos = this.#persist([]);
    // documents fetched since the last flush: one row, not one per document
    this.#identity.flush();
    // bounded: at most compactAtEntries accounts written as a run, then one merge step (≤ 32 chunks)
    this.#repos.compactIfDue(() => this.#hosts.values());
    try {
      await hostDirectoryStub(this.env).reportHosts(
        [...this.#hosts.values()].map((h) => this.#report(h)),
      );
      await this.#pushRepoUpdates(changedRepos);
    } catch (err) {
      this.#log("reporting failed", { error: String(err) });
    }
  }

  /**
   * Writes, in one row (one transaction), the acknowledged account state, the hosts' cursors
   * that match it, and every host whose record changed (plus `also`). Only what moved: a quiet
   * report writes no row. Returns the account states written.
   */
  #persist(also: HostRecord[]): RepoState[] {
    for (const [hostname, seq] of this.#acked) {
      const host = this.#hosts.get(hostname);
      if (host && host.cursor !== seq) {
        host.cursor = seq;
        this.#dirtyHosts.add(hostname);
      }
    }
    const dirty = new Set(also);
    for (const h of this.#dirtyHosts) {
      const host = this.#hosts.get(h);
      if (host) dirty.add(host);
    }
    this.#dirtyHosts.clear();
    let changed: RepoState[] = [];
    this.ctx.storage.transactionSync(() => {
      changed = this.#repos.writeAcknowledged([...dirty]);
    });
    return changed;
  }

  async #pushRepoUpdates(repos: RepoState[]): Promise<void> {
    if (repos.length === 0) return;
    const byShard = new Map<number, RepoState[]>();
    for (const repo of repos) {
      const shard = repoIndexShard(repo.did, this.#config.repoIndexShards);
      const list = byShard.get(shard) ?? [];
      list.push(repo);
      byShard.set(shard, list);
    }
    await Promise.all(
      [...byShard].map(([shard, list]) =>
        repoIndexStub(this.env, shard).applyRepoUpdates(
          list.map((r) => ({
            did: r.did,
            host: r.host,
            rev: r.rev,
            head: r.head,
            // upstream status only: relay takedowns are the Sequencer's and the index's own
            active: r.active,
            status: r.status,
          })),
        ),
      ),
    );
  }

  /** Pushes host and repo state out now (tests; it happens every HOST_REPORT_INTERVAL_SECONDS). */
  async publishState(): Promise<void> {
    await this.#flush();
    await this.#reportAll(true);
  }

  #report(host: HostRecord): HostReport {
    return {
      hostname: host.hostname,
      status: host.status,
      cursor: host.cursor,
      accountCount: this.#repos.countForHost(host.hostname),
      lastError: host.lastError,
      lastAttemptMs: host.lastAttemptMs,
      connectedSinceMs: this.#sessions.has(host.hostname) ? host.connectedSinceMs : null,
      lastEventMs: host.lastEventMs,
      counters: host.counters,
      ingester: this.#name ?? "unknown",
    };
  }

  async #rememberName(name: string): Promise<void> {
    if (this.#name === name) return;
    this.#name = name;
    await this.ctx.storage.put("name", name);
  }

  #log(msg: string, fields: Record<string, unknown>): void {
    console.log(JSON.stringify({ msg, ingester: this.#name, ...fields }));
  }
}
