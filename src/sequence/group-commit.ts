// Group commit: appends that arrive close together share one transaction and one hot-log row,
// because every row written is billed (docs/cost.md) and each ingester object sends a batch per
// INGEST_BATCH_WINDOW_MS. The first append after a quiet window is committed at once (no added
// latency at low rates); the ones that arrive within `windowMs` of the last commit wait for the
// next one, at lastCommit + windowMs. So while appends keep arriving there is at most one commit
// per window, and an append waits at most `windowMs` longer than it did alone.
//
// Waiting only pays when batches of several appenders can meet: an appender (an ingester's
// append socket) sends its next batch only once the previous one is answered, so a lone
// appender's batch would wait for nobody, and its timer would keep a quiet Sequencer from being
// eligible for hibernation. So an append whose appender is the only one seen in the last
// `othersWithinMs` is committed at once. An append without an appender (a plain RPC call, an
// event the relay makes) counts as an appender of its own, as before.
//
// Every caller still gets its own result, once its commit is durable (the output gate holds the
// answer until the transaction is written).

/**
 * How long an appender counts as active after its last batch: a busy ingester flushes every
 * INGEST_BATCH_WINDOW_MS (90 ms), so a second is ten of its windows; two busy appenders never
 * look alone to each other, and the event log stays at one row per window while both append.
 */
export const DEFAULT_OTHERS_WITHIN_MS = 1_000;

type Waiter<Request, Result> = {
  request: Request;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
};

export class GroupCommit<Request, Result> {
  readonly #windowMs: number;
  /** Commits requests in the order given, in one transaction; a result per request. */
  readonly #commit: (requests: Request[]) => Result[];
  #waiting: Waiter<Request, Result>[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #lastCommitMs = Number.NEGATIVE_INFINITY;
  readonly #othersWithinMs: number;
  /** When each appender last submitted (those older than `othersWithinMs` are forgotten). */
  readonly #appenders = new Map<string | symbol, number>();

  constructor(
    windowMs: number,
    commit: (requests: Request[]) => Result[],
    othersWithinMs = DEFAULT_OTHERS_WITHIN_MS,
  ) {
    this.#windowMs = windowMs;
    this.#commit = commit;
    this.#othersWithinMs = othersWithinMs;
  }

  /**
   * Commits `request` at once, or with the others of the window; in arrival order either way.
   * `appender` names who sent it (none: an appender of its own).
   */
  submit(request: Request, appender?: string): Promise<Result> {
    const now = Date.now();
    const alone = this.#onlyAppender(appender ?? Symbol("appender"), now);
    if (this.#waiting.length === 0 && (alone || now - this.#lastCommitMs >= this.#windowMs)) {
      try {
        return Promise.resolve(this.#run([request])[0] as Result);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const result = new Promise<Result>((resolve, reject) => {
      this.#waiting.push({ request, resolve, reject });
    });
    this.#timer ??= setTimeout(
      () => this.flush(),
      Math.max(0, this.#lastCommitMs + this.#windowMs - now),
    );
    return result;
  }

  /**
   * Commits what is waiting now: before a write that has to come after it (an admin reset or
   * takedown decides how later events are judged, so earlier ones must be committed first).
   * A failed commit fails every request of the group, as it would have failed each alone.
   */
  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const group = this.#waiting;
    this.#waiting = [];
    if (group.length === 0) return;
    let results: Result[];
    try {
      results = this.#run(group.map((w) => w.request));
    } catch (err) {
      for (const w of group) w.reject(err);
      return;
    }
    group.forEach((w, i) => {
      w.resolve(results[i] as Result);
    });
  }

  /** Notes `appender`'s submit; whether no other appender submitted in the last `othersWithinMs`. */
  #onlyAppender(appender: string | symbol, now: number): boolean {
    let alone = true;
    for (const [other, at] of this.#appenders) {
      if (now - at >= this.#othersWithinMs) this.#appenders.delete(other);
      else if (other !== appender) alone = false;
    }
    this.#appenders.set(appender, now);
    return alone;
  }

  /** Commits `request` in a transaction of its own, after everything waiting (synchronously). */
  commitAlone(request: Request): Result {
    this.flush();
    return this.#run([request])[0] as Result;
  }

  #run(requests: Request[]): Result[] {
    this.#lastCommitMs = Date.now();
    return this.#commit(requests);
  }
}
