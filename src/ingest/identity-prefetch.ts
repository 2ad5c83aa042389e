// Identity look-ups started ahead of validation. A host's frames are validated one at a time, in
// order, and the first event of an account the ingester has no document for waits for a DID
// look-up (a PLC or did:web round trip) with the thread idle: in a backlog after a restart,
// hundreds of accounts in a row (`npm run bench -- backlog`: ~40 % of the drain's first second
// idle). So when a frame is queued behind others, its account's document is asked for at once,
// a few at a time; by the time validation reaches the frame, the document is usually cached.
//
// Nothing is decided here: the look-up is the one validation would make first (same cache, same
// maximum age, same host for the wasted-look-up budget), and its outcome, a document or a
// failure, is what validation then finds in the cache. A DID with a cached document, however
// old, is not asked for (validation decides whether it is fresh enough), nor is one already
// waiting or being looked up. Bounded: MAX_RUNNING look-ups at once (Workers run at most six
// outgoing connections at once per invocation anyway), MAX_WAITING DIDs waiting; beyond that
// nothing is prefetched and validation looks up as before.

/** What the prefetcher needs of the identity cache (identity-cache.ts). */
export type IdentityLookups = {
  /** A cached document of `did`, however old, or null. */
  peek(did: string): unknown;
  /** The look-up validation makes first for an account on `host`. */
  get(did: string, options: { host: string }): Promise<unknown>;
};

export const PREFETCH_MAX_RUNNING = 6;
export const PREFETCH_MAX_WAITING = 1_000;

export class IdentityPrefetch {
  readonly #lookups: IdentityLookups;
  /** DIDs to look up, with the host each was seen on; in arrival order. */
  readonly #waiting = new Map<string, string>();
  readonly #running = new Set<string>();
  readonly #maxRunning: number;
  readonly #maxWaiting: number;

  constructor(
    lookups: IdentityLookups,
    maxRunning = PREFETCH_MAX_RUNNING,
    maxWaiting = PREFETCH_MAX_WAITING,
  ) {
    this.#lookups = lookups;
    this.#maxRunning = maxRunning;
    this.#maxWaiting = maxWaiting;
  }

  /** Look-ups in flight and waiting (for tests and status). */
  get size(): { running: number; waiting: number } {
    return { running: this.#running.size, waiting: this.#waiting.size };
  }

  /** Asks for `did`'s document soon, unless cached, already asked for, or the queue is full. */
  want(did: string, host: string): void {
    if (this.#running.has(did) || this.#waiting.has(did)) return;
    if (this.#lookups.peek(did) !== null) return;
    if (this.#waiting.size >= this.#maxWaiting) return;
    this.#waiting.set(did, host);
    this.#startNext();
  }

  #startNext(): void {
    while (this.#running.size < this.#maxRunning) {
      const next = this.#waiting.entries().next().value;
      if (next === undefined) return;
      const [did, host] = next;
      this.#waiting.delete(did);
      // cached meanwhile (validation got there first): nothing to do
      if (this.#lookups.peek(did) !== null) continue;
      this.#running.add(did);
      this.#lookups
        .get(did, { host })
        .catch(() => {
          // the failure is cached by the identity cache; validation meets it and decides
        })
        .finally(() => {
          this.#running.delete(did);
          this.#startNext();
        });
    }
  }
}
