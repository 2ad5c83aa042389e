// How many entries an ingester's caches keep in memory. Together with the queue limits
// (ingest/intake.ts) they are what bounds a HostIngester's memory at any backlog, however many
// hosts and accounts it carries; `npm run bench -- ingester-memory` measures an entry of each
// and prints the total against an object's 128 MB (docs/behaviours.md, "Memory").

/** DID documents kept in memory (identity-cache.ts; the oldest is forgotten first). */
export const IDENTITY_MEMORY_ENTRIES = 30_000;
/** Failed resolutions remembered in memory (identity-cache.ts). */
export const IDENTITY_MEMORY_FAILURES = 10_000;
/** Account states handed out and kept in memory (repo-state.ts; the oldest is forgotten first). */
export const REPO_STATE_MEMORY_ENTRIES = 50_000;
/** Account states read from the packed store's runs and kept (its `cacheEntries`). */
export const REPO_STATE_RUN_CACHE_ENTRIES = 30_000;
