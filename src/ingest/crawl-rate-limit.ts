// requestCrawl's per-caller limit: at most `limit` calls per caller (a client IP) per minute, in
// fixed one-minute windows. Kept in the HostDirectory's memory, never in SQLite (a row per call
// would be billed per call, docs/cost.md): the counts start afresh when the object restarts, so
// the limit is approximate, which is all a limit on an idempotent call needs.

export const CRAWL_RATE_WINDOW_MS = 60_000;
/** Callers tracked at once; past it, finished windows are forgotten (then all, if need be). */
const MAX_TRACKED_CALLERS = 10_000;

/** `firstRefusal`: the caller's first refused call of this window (log that one, not a flood). */
export type CrawlRateVerdict =
  | { ok: true }
  | { ok: false; retryAfterSeconds: number; firstRefusal: boolean };

export class CrawlRateLimit {
  readonly #windows = new Map<string, { startMs: number; calls: number; refused: number }>();

  /** Counts one call by `caller` at `nowMs`, or refuses it with when to try again. */
  take(caller: string, limit: number, nowMs: number): CrawlRateVerdict {
    let window = this.#windows.get(caller);
    if (!window || nowMs - window.startMs >= CRAWL_RATE_WINDOW_MS) {
      if (!window && this.#windows.size >= MAX_TRACKED_CALLERS) this.#forgetFinished(nowMs);
      window = { startMs: nowMs, calls: 0, refused: 0 };
      this.#windows.set(caller, window);
    }
    if (window.calls >= limit) {
      const waitMs = window.startMs + CRAWL_RATE_WINDOW_MS - nowMs;
      window.refused++;
      return {
        ok: false,
        retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
        firstRefusal: window.refused === 1,
      };
    }
    window.calls++;
    return { ok: true };
  }

  #forgetFinished(nowMs: number): void {
    for (const [caller, window] of this.#windows)
      if (nowMs - window.startMs >= CRAWL_RATE_WINDOW_MS) this.#windows.delete(caller);
    // a flood of distinct callers within one minute: forget them all rather than grow
    if (this.#windows.size >= MAX_TRACKED_CALLERS) this.#windows.clear();
  }
}
