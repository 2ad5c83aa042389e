import type { DidDocumentInfo } from "../protocol/did-doc";
import { formatDidKey, parseDidKey } from "../protocol/did-key";
import { IdentityUnavailable, type ResolverOptions, resolveDid } from "./resolver";

// DID documents cached in the ingester's SQLite (survives eviction) with an in-memory layer.
// An entry expires after IDENTITY_TTL_MS; `#identity` events and failed checks force a refresh.
// Resolution is retried a few times with a short backoff; a failure is reported to the caller,
// never thrown past it.

export const IDENTITY_TTL_MS = 60 * 60 * 1000;
const RESOLVE_ATTEMPTS = 3;
const RETRY_BASE_MS = 200;
const MEMORY_ENTRIES = 50_000;

type Stored = {
  did: string;
  pds: string | null;
  handle: string | null;
  key: string | null;
  fetched_ms: number;
};

export const IDENTITY_SCHEMA = `
CREATE TABLE IF NOT EXISTS identity (
  did TEXT PRIMARY KEY,
  pds TEXT,
  handle TEXT,
  key TEXT,
  fetched_ms INTEGER NOT NULL
);`;

export type Resolve = (did: string) => Promise<DidDocumentInfo>;

export class IdentityCache {
  readonly #memory = new Map<string, { info: DidDocumentInfo; fetchedMs: number }>();
  readonly #inflight = new Map<string, Promise<DidDocumentInfo>>();
  readonly #resolve: Resolve;

  constructor(
    private readonly sql: SqlStorage,
    options: ResolverOptions,
    resolve?: Resolve,
  ) {
    sql.exec(IDENTITY_SCHEMA);
    this.#resolve = resolve ?? ((did) => resolveDid(did, options));
  }

  /** The cached document if fresh, otherwise a resolved one. `fresh` skips the cache. */
  async get(did: string, fresh = false): Promise<DidDocumentInfo> {
    const now = Date.now();
    if (!fresh) {
      const cached = this.#memory.get(did) ?? this.#load(did);
      if (cached && now - cached.fetchedMs < IDENTITY_TTL_MS) return cached.info;
    }
    const running = this.#inflight.get(did);
    if (running) return running;
    const promise = this.#resolveWithRetry(did).finally(() => this.#inflight.delete(did));
    this.#inflight.set(did, promise);
    return promise;
  }

  /** Forgets a DID so the next check resolves it again (after an `#identity` event). */
  invalidate(did: string): void {
    this.#memory.delete(did);
    this.sql.exec("DELETE FROM identity WHERE did = ?", did);
  }

  #load(did: string): { info: DidDocumentInfo; fetchedMs: number } | undefined {
    const row = this.sql
      .exec<Stored>("SELECT did, pds, handle, key, fetched_ms FROM identity WHERE did = ?", did)
      .toArray()[0];
    if (!row) return undefined;
    const entry = {
      info: {
        did: row.did,
        pdsEndpoint: row.pds,
        handle: row.handle,
        signingKey: row.key ? parseDidKey(row.key) : null,
      },
      fetchedMs: row.fetched_ms,
    };
    this.#remember(did, entry);
    return entry;
  }

  #remember(did: string, entry: { info: DidDocumentInfo; fetchedMs: number }): void {
    if (this.#memory.size >= MEMORY_ENTRIES) {
      const oldest = this.#memory.keys().next().value;
      if (oldest !== undefined) this.#memory.delete(oldest);
    }
    this.#memory.set(did, entry);
  }

  async #resolveWithRetry(did: string): Promise<DidDocumentInfo> {
    let lastError: unknown;
    for (let attempt = 0; attempt < RESOLVE_ATTEMPTS; attempt++) {
      try {
        const info = await this.#resolve(did);
        const fetchedMs = Date.now();
        this.#remember(did, { info, fetchedMs });
        this.sql.exec(
          "INSERT OR REPLACE INTO identity (did, pds, handle, key, fetched_ms) VALUES (?, ?, ?, ?, ?)",
          did,
          info.pdsEndpoint,
          info.handle,
          info.signingKey ? formatDidKey(info.signingKey) : null,
          fetchedMs,
        );
        return info;
      } catch (err) {
        lastError = err;
        if (!(err instanceof IdentityUnavailable)) throw err;
        await new Promise((r) => setTimeout(r, RETRY_BASE_MS * 2 ** attempt));
      }
    }
    throw lastError;
  }
}
