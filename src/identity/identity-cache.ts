import { IDENTITY_MEMORY_ENTRIES, IDENTITY_MEMORY_FAILURES } from "../ingest/memory-bounds";
import { fullBucket, refill, type TokenBucket } from "../ingest/rate-limit";
import { type DidDocumentInfo, endpointHost } from "../protocol/did-doc";
import { formatDidKey, parseDidKey } from "../protocol/did-key";
import { type Forgotten, IdentityBatches, type KeptDocument } from "./identity-batches";
import { DidResolver, IdentityUnavailable, type ResolverOptions } from "./resolver";

// DID documents cached in memory, the ones worth keeping across a restart also in the ingester's
// SQLite (identity-batches.ts: one row per flush for all of them, not one per document).
//
// Look-ups are driven by what upstream hosts send, so a hostile host must not be able to turn
// its events into PLC requests and row writes (issue 10, item 11). Bounds:
//   - a document is fetched again only when it is older than the caller allows: IDENTITY_TTL_MS
//     for ordinary checks, IDENTITY_RECHECK_AFTER_MS to re-check a refusal (WrongHost, a bad
//     signature) or to follow an #identity event, so a burst of events about one DID costs one
//     fetch;
//   - failed resolutions are remembered briefly (FAILURE_TTL_MS), so they are not retried per
//     event;
//   - per host, look-ups that authorise nothing (a failure, or a document that names another
//     host) spend a token bucket (WASTED_LOOKUPS_PER_SECOND, WASTED_LOOKUPS_BURST); once it is
//     empty, that host's further fresh look-ups are refused as IdentityUnavailable, a retryable
//     verdict (the ingester stalls the host and reads it again later, nothing is skipped).
//     Look-ups that authorise the asking host cost nothing, so an honest host is never slowed;
//   - while every PLC source is unavailable, an ordinary check may use an expired copy for
//     IDENTITY_STALE_GRACE_SECONDS past the TTL, so a PLC outage does not stall every honest
//     host; re-checks may not (a DID with no usable copy waits: IdentityUnavailable);
//   - a document is kept for a restart only when a kept copy changed, or when it names the
//     asking host and its kept copy is missing or older than the TTL: other hosts' accounts are
//     kept in memory only, and an unchanged document is not kept again. Kept documents are
//     written together, one row per flush (the ingester's report, or at most every
//     IDENTITY_FLUSH_INTERVAL_MS), except a changed kept copy and an invalidation, which are
//     written at once so a restart cannot bring back an outdated document.
// Resolution is retried a few times with a short backoff; a failure is reported to the caller,
// never thrown past it.

export const IDENTITY_TTL_MS = 60 * 60 * 1000;
/**
 * While every PLC source is unavailable, ordinary checks may use a copy this long past the TTL
 * (the default of IDENTITY_STALE_GRACE_SECONDS; docs/behaviours.md says why a day).
 */
export const IDENTITY_STALE_GRACE_MS = 24 * 60 * 60 * 1000;
/** A document fetched this recently is not fetched again to re-check a refusal or an #identity. */
export const IDENTITY_RECHECK_AFTER_MS = 5_000;
/** How long a failed resolution is answered from memory: unavailable (retryable), or invalid. */
export const FAILURE_TTL_MS = { unavailable: 10_000, invalid: 60_000 } as const;
/** Per host: look-ups that authorise nothing, per second and in a burst, before it must wait. */
export const WASTED_LOOKUPS_PER_SECOND = 2;
export const WASTED_LOOKUPS_BURST = 30;
const RESOLVE_ATTEMPTS = 3;
const RETRY_BASE_MS = 200;
/** Kept documents wait in memory at most this long before a look-up writes them. */
export const IDENTITY_FLUSH_INTERVAL_MS = 30_000;

export type Resolve = (did: string) => Promise<DidDocumentInfo>;

export type IdentityCacheOptions = ResolverOptions & {
  /** How long past the TTL a copy may serve while no source answers; IDENTITY_STALE_GRACE_MS. */
  staleGraceMs?: number;
};

export type LookupOptions = {
  /** The host whose event needs the document (whose budget a wasted look-up spends). */
  host: string;
  /** Accept a cached document at most this old; IDENTITY_TTL_MS when absent. */
  maxAgeMs?: number;
};

type Entry = {
  info: DidDocumentInfo;
  fetchedMs: number;
  /** When the kept copy (written or waiting for a flush) was fetched; null when none is. */
  storedMs: number | null;
};

type Failure = { error: unknown; untilMs: number };

function hostOf(info: DidDocumentInfo): string | null {
  return info.pdsEndpoint ? endpointHost(info.pdsEndpoint) : null;
}

function keyOf(info: DidDocumentInfo): string | null {
  return info.signingKey ? formatDidKey(info.signingKey) : null;
}

function keptOf(info: DidDocumentInfo, fetchedMs: number): KeptDocument {
  return { did: info.did, pds: info.pdsEndpoint, handle: info.handle, key: keyOf(info), fetchedMs };
}

function sameDocument(a: DidDocumentInfo, b: DidDocumentInfo): boolean {
  return a.pdsEndpoint === b.pdsEndpoint && a.handle === b.handle && keyOf(a) === keyOf(b);
}

export class IdentityCache {
  readonly #memory = new Map<string, Entry>();
  readonly #failures = new Map<string, Failure>();
  readonly #budgets = new Map<string, TokenBucket>();
  readonly #inflight = new Map<string, Promise<DidDocumentInfo>>();
  readonly #resolve: Resolve;
  readonly #batches: IdentityBatches;
  /** Documents and invalidations to write at the next flush, by DID (the last one wins). */
  readonly #pending = new Map<string, KeptDocument | Forgotten>();
  #flushedMs = Date.now();
  /** The oldest copy an ordinary check may use while no source answers: TTL + grace. */
  readonly #staleMaxMs: number;
  /** The resolver, whose PLC source health lives as long as this cache (absent with `resolve`). */
  readonly resolver: DidResolver | null;

  /** Loads the kept documents (a few hundred rows at most, read once per start). */
  constructor(sql: SqlStorage, options: IdentityCacheOptions, resolve?: Resolve) {
    const resolver = resolve ? null : new DidResolver(options);
    this.resolver = resolver;
    this.#resolve = resolve ?? ((did) => (resolver as DidResolver).resolve(did));
    this.#staleMaxMs = IDENTITY_TTL_MS + (options.staleGraceMs ?? IDENTITY_STALE_GRACE_MS);
    this.#batches = new IdentityBatches(sql);
    const oldest = Date.now() - this.#staleMaxMs;
    for (const doc of this.#batches.load().values()) {
      if (doc.fetchedMs < oldest) continue;
      this.#remember(doc.did, {
        info: {
          did: doc.did,
          pdsEndpoint: doc.pds,
          handle: doc.handle,
          signingKey: doc.key ? parseDidKey(doc.key) : null,
        },
        fetchedMs: doc.fetchedMs,
        storedMs: doc.fetchedMs,
      });
    }
  }

  /**
   * Writes the documents kept since the last flush, one row per IDENTITY_BATCH_DOCUMENTS, and
   * drops rows older than the TTL. The ingester calls it at each report; look-ups also call it
   * once IDENTITY_FLUSH_INTERVAL_MS has passed. Documents not yet flushed are lost with the
   * object: a restart then only resolves them again.
   */
  flush(): void {
    const now = Date.now();
    this.#flushedMs = now;
    if (this.#pending.size === 0) return;
    this.#batches.write([...this.#pending.values()], now);
    this.#pending.clear();
    this.#batches.dropOlderThan(now - IDENTITY_TTL_MS);
  }

  #flushIfDue(): void {
    if (this.#pending.size === 0 || Date.now() - this.#flushedMs < IDENTITY_FLUSH_INTERVAL_MS)
      return;
    try {
      this.flush();
    } catch {
      // kept for the next flush: a look-up must not fail because the cache could not be written
    }
  }

  /**
   * The cached document if it is recent enough, otherwise a resolved one. Throws
   * IdentityUnavailable (retryable: the directory is down, or `host` spent its look-up budget)
   * or a ProtocolError (the document is missing or malformed).
   */
  async get(did: string, options: LookupOptions): Promise<DidDocumentInfo> {
    const now = Date.now();
    const cached = this.#entry(did);
    if (cached && now - cached.fetchedMs < (options.maxAgeMs ?? IDENTITY_TTL_MS))
      return cached.info;
    const failure = this.#failures.get(did);
    if (failure && failure.untilMs > now) return this.#unavailable(failure.error, cached, options);
    const running = this.#inflight.get(did);
    if (running) return running.catch((err) => this.#unavailable(err, cached, options));
    const budget = refill(
      this.#budgets.get(options.host) ?? fullBucket(WASTED_LOOKUPS_BURST, now),
      now,
      WASTED_LOOKUPS_PER_SECOND,
      WASTED_LOOKUPS_BURST,
    );
    this.#budgets.set(options.host, budget);
    if (budget.tokens < 1) {
      const spent = new IdentityUnavailable(
        `${options.host} spent its identity look-up budget (${WASTED_LOOKUPS_PER_SECOND}/s of look-ups that authorise nothing)`,
      );
      return this.#unavailable(spent, cached, options);
    }
    const promise = this.#fetch(did, options.host).finally(() => this.#inflight.delete(did));
    this.#inflight.set(did, promise);
    return promise.catch((err) => this.#unavailable(err, cached, options));
  }

  /**
   * A look-up failed. When the directory is only unavailable (every source down or rate-limiting,
   * or the host's budget is spent) an ordinary check may use an expired copy up to the TTL plus
   * the stale grace old, so honest hosts keep flowing through a directory outage; a re-check
   * (after a refusal or an #identity) may not, and gets the error.
   */
  #unavailable(err: unknown, cached: Entry | undefined, options: LookupOptions): DidDocumentInfo {
    const ordinary = (options.maxAgeMs ?? IDENTITY_TTL_MS) >= IDENTITY_TTL_MS;
    if (
      err instanceof IdentityUnavailable &&
      ordinary &&
      cached &&
      Date.now() - cached.fetchedMs < this.#staleMaxMs
    )
      return cached.info;
    throw err;
  }

  /** The cached document of a DID, however old, without any network request. */
  peek(did: string): DidDocumentInfo | null {
    return this.#entry(did)?.info ?? null;
  }

  /**
   * Forgets a DID so the next check resolves it again: another ingester saw the account's
   * `#identity` name a new PDS (HostDirectory.identityMoved). Written at once (one row per
   * migration), after every kept copy, so a restart cannot bring the old document back.
   */
  invalidate(did: string): void {
    this.#memory.delete(did);
    this.#failures.delete(did);
    this.#pending.set(did, { did, forgotten: true });
    this.flush();
  }

  #entry(did: string): Entry | undefined {
    return this.#memory.get(did);
  }

  #remember(did: string, entry: Entry): void {
    this.#memory.delete(did);
    if (this.#memory.size >= IDENTITY_MEMORY_ENTRIES) {
      const oldest = this.#memory.entries().next().value;
      if (oldest !== undefined) {
        this.#memory.delete(oldest[0]);
        // a kept copy is forgotten with its entry: a later change of the document could not be
        // compared with it, and after a restart it would speak for the account again
        if (oldest[1].storedMs !== null)
          this.#pending.set(oldest[0], { did: oldest[0], forgotten: true });
      }
    }
    this.#memory.set(did, entry);
  }

  #spend(host: string): void {
    const now = Date.now();
    const budget = refill(
      this.#budgets.get(host) ?? fullBucket(WASTED_LOOKUPS_BURST, now),
      now,
      WASTED_LOOKUPS_PER_SECOND,
      WASTED_LOOKUPS_BURST,
    );
    this.#budgets.set(host, { tokens: Math.max(0, budget.tokens - 1), atMs: now });
  }

  async #fetch(did: string, host: string): Promise<DidDocumentInfo> {
    let info: DidDocumentInfo;
    try {
      info = await this.#resolveWithRetry(did);
    } catch (err) {
      this.#spend(host);
      const ttl =
        err instanceof IdentityUnavailable ? FAILURE_TTL_MS.unavailable : FAILURE_TTL_MS.invalid;
      if (this.#failures.size >= IDENTITY_MEMORY_FAILURES) {
        const oldest = this.#failures.keys().next().value;
        if (oldest !== undefined) this.#failures.delete(oldest);
      }
      this.#failures.set(did, { error: err, untilMs: Date.now() + ttl });
      throw err;
    }
    this.#failures.delete(did);
    const namesHost = hostOf(info) === host;
    if (!namesHost) this.#spend(host);
    const now = Date.now();
    const previous = this.#entry(did);
    const changed = previous !== undefined && !sameDocument(previous.info, info);
    let storedMs = previous?.storedMs ?? null;
    const stale = storedMs === null || now - storedMs >= IDENTITY_TTL_MS;
    // a kept copy must never be an outdated document (after a restart it would speak for the
    // account again), so a change is written at once; other hosts' accounts are not worth keeping
    const keep = (storedMs !== null && changed) || (namesHost && stale);
    if (keep) {
      this.#pending.set(did, keptOf(info, now));
      storedMs = now;
    }
    this.#remember(did, { info, fetchedMs: now, storedMs });
    if (keep && changed) this.flush();
    else this.#flushIfDue();
    return info;
  }

  async #resolveWithRetry(did: string): Promise<DidDocumentInfo> {
    let lastError: unknown;
    for (let attempt = 0; attempt < RESOLVE_ATTEMPTS; attempt++) {
      try {
        return await this.#resolve(did);
      } catch (err) {
        lastError = err;
        if (!(err instanceof IdentityUnavailable)) throw err;
        if (attempt + 1 < RESOLVE_ATTEMPTS)
          await new Promise((r) => setTimeout(r, RETRY_BASE_MS * 2 ** attempt));
      }
    }
    throw lastError;
  }
}
