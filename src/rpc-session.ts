// One long-lived RPC session to a Durable Object, for a caller that sends it many calls.
//
// Cloudflare bills an RPC session as one request: every method call on a Durable Object stub is
// a session of its own, but calls on an `RpcTarget` stub returned by such a call belong to that
// session and are not billed again
// (https://developers.cloudflare.com/durable-objects/platform/pricing/). So a caller that would
// make tens of calls a second opens a session once and makes its calls on it.
//
// The price: while a session is open the callee has a request in progress, so it is not eligible
// for hibernation and is billed duration. Hence a session is closed (its stub disposed) once it
// has gone unused for `idleCloseMs`, and a quiet relay lets its objects sleep. It is also renewed
// after `maxAgeMs`: Cloudflare documents its per-request limits (CPU time, subrequests) for
// incoming requests, not for the calls of a session that lasts for days, so no session is left
// to find out (renewing costs one request per `maxAgeMs`).

/** `Symbol.dispose`: workerd has it; TypeScript's ES2023 lib used here does not declare it. */
const DISPOSE = (Symbol as unknown as { dispose: symbol }).dispose;

/** What an `RpcTarget` stub returned by a Durable Object method is, as far as this cares. */
export type SessionStub = object;

export type RpcSessionOptions = {
  /** Close the session once no call has been made on it for this long. */
  idleCloseMs: number;
  /** Open a new session in place of one older than this, at its next call. */
  maxAgeMs: number;
  /**
   * Calls per second (measured over the last `rateWindowMs`) below which calls given a `direct`
   * form are made as plain RPC calls instead, and an open session is closed once the rate falls
   * under half of it. 0: always a session.
   */
  openAtCallsPerSecond?: number;
  /** How long the call rate is measured over before a session is opened or closed for it. */
  rateWindowMs?: number;
};

/**
 * The relay's sessions (the Sequencer's deliveries, a region head's forwards): closed after 30 s
 * unused (the Sequencer delivers every FANOUT_DELIVERY_INTERVAL_MS while batches arrive),
 * renewed every minute (one request per minute per session:
 * 43,200 a month, under a cent).
 */
export const SESSION_TIMING: RpcSessionOptions = {
  idleCloseMs: 30_000,
  maxAgeMs: 60_000,
  // An open session keeps its callee awake: 0.128 GB × 2.59 M s a month ≈ $4.15 of duration,
  // what 27 M requests cost ($0.15/M), i.e. ~10 calls/s all month. Below that, plain calls are
  // cheaper and the callee may sleep between them (docs/cost.md "RPC sessions").
  openAtCallsPerSecond: 10,
};

/** Ends a session: the callee's target is released and its request ends. */
export function disposeStub(stub: SessionStub): void {
  try {
    (stub as Record<symbol, (() => void) | undefined>)[DISPOSE]?.();
  } catch {
    // a stub whose session already broke has nothing left to release
  }
}

export class RpcSession<S extends SessionStub> {
  readonly #open: () => Promise<S>;
  readonly #options: RpcSessionOptions;
  #stub: Promise<S> | null = null;
  #openedMs = 0;
  #lastUsedMs = 0;
  #inFlight = 0;
  #idleTimer: ReturnType<typeof setTimeout> | null = null;
  #opened = 0;
  #windowStartMs = Date.now();
  #windowCalls = 0;
  /** Calls per second over the last complete rate window (none yet: as if busy). */
  #rate = Number.POSITIVE_INFINITY;

  /** `open` makes the one billed call that returns the session's `RpcTarget` stub. */
  constructor(open: () => Promise<S>, options: RpcSessionOptions) {
    this.#open = open;
    this.#options = options;
  }

  /** Sessions opened so far (each one billed request). */
  get opened(): number {
    return this.#opened;
  }

  get isOpen(): boolean {
    return this.#stub !== null;
  }

  /**
   * Runs `use` on the session, opening one if there is none. If it throws, the session is taken
   * as broken (a callee restarted or evicted breaks every stub of its sessions) and closed; with
   * `retryOnce`, `use` then runs once more on a fresh session: only for a call that is safe to
   * repeat, since the failed one may have run to completion before its answer was lost.
   */
  async call<R>(
    use: (stub: S) => Promise<R>,
    retryOnce: boolean,
    direct?: () => Promise<R>,
  ): Promise<R> {
    this.#inFlight++;
    const attempt = direct && !this.#worthASession() ? direct : () => this.#attempt(use);
    try {
      try {
        return await attempt();
      } catch (err) {
        if (!retryOnce) throw err;
        return await attempt();
      }
    } finally {
      this.#inFlight--;
      this.#lastUsedMs = Date.now();
      this.#armIdleClose();
    }
  }

  /**
   * Whether the call rate pays for a session. The first window counts as busy, so a burst (a
   * backlog after a restart) gets its session at once; a session is closed below half the rate
   * it opens at, so a rate near the threshold does not open and close one at every window.
   */
  #worthASession(): boolean {
    const threshold = this.#options.openAtCallsPerSecond ?? 0;
    const now = Date.now();
    this.#windowCalls++;
    if (now - this.#windowStartMs >= (this.#options.rateWindowMs ?? 10_000)) {
      this.#rate = (this.#windowCalls * 1000) / (now - this.#windowStartMs);
      this.#windowStartMs = now;
      this.#windowCalls = 0;
    }
    if (threshold <= 0) return true;
    if (this.#stub && this.#rate < threshold / 2) this.close();
    return this.#stub ? true : this.#rate >= threshold;
  }

  /** Closes the session now (the next call opens a new one). */
  close(): void {
    const stub = this.#stub;
    this.#stub = null;
    if (this.#idleTimer !== null) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = null;
    }
    stub?.then(disposeStub, () => {});
  }

  async #attempt<R>(use: (stub: S) => Promise<R>): Promise<R> {
    const pending = this.#session();
    try {
      return await use(await pending);
    } catch (err) {
      // a newer session may have replaced this one meanwhile: only close the one that failed
      if (this.#stub === pending) this.close();
      throw err;
    }
  }

  #session(): Promise<S> {
    if (this.#stub && Date.now() - this.#openedMs >= this.#options.maxAgeMs) this.close();
    if (!this.#stub) {
      this.#opened++;
      this.#openedMs = Date.now();
      this.#stub = this.#open();
      // an open that failed leaves no session behind (#attempt closes it for its caller)
      this.#stub.catch(() => {});
    }
    return this.#stub;
  }

  #armIdleClose(): void {
    if (this.#idleTimer !== null || !this.#stub) return;
    const due = this.#lastUsedMs + this.#options.idleCloseMs - Date.now();
    this.#idleTimer = setTimeout(
      () => {
        this.#idleTimer = null;
        if (this.#inFlight > 0) return; // re-armed when that call ends
        if (Date.now() - this.#lastUsedMs >= this.#options.idleCloseMs) this.close();
        else this.#armIdleClose();
      },
      Math.max(0, due),
    );
  }
}
