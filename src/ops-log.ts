// The operator's log: one JSON line per event that matters, each with a stable `event` name first,
// so `wrangler tail --format json --search '"event":"host_status"'` picks one kind (README, Logs).
// Accepted events are never logged one by one (the network sends thousands a second); drops are
// logged at most once per host and reason per DROP_LOG_INTERVAL_MS, with how many there were,
// so a flood of bad frames cannot flood the log. Other lines (debugging detail) stay `msg` lines.

export type OpsFields = {
  /** A host's status changed (ingest/host-record.ts HostStatus), and why. */
  host_status: {
    hostname: string;
    from: string;
    to: string;
    reason: string | null;
    ingester: string | null;
  };
  /** Events of a host dropped for `reason` since the previous line of this host and reason. */
  event_dropped: {
    hostname: string;
    reason: string;
    count: number;
    did?: string | null;
    detail?: string;
    ingester?: string | null;
  };
  /** `cursor`: what the consumer asked for; `region`: the Fanout's region, null for the global shards. */
  consumer_connect: {
    fanout: string | null;
    cursor: number | null;
    start: string;
    region: string | null;
  };
  /** `cursor`: the last seq sent; `by`: who ended it; `error` when the relay closed it. */
  consumer_disconnect: {
    fanout: string | null;
    cursor: number | null;
    by: "consumer" | "relay";
    code?: number;
    error?: string;
    region: string | null;
  };
  crawl_requested: { hostname: string; created: boolean; status: string; admin: boolean };
  /** requestCrawl answered an error the caller can act on (4xx). */
  crawl_refused: {
    hostname: string | null;
    error: string;
    message: string;
    caller: string;
    admin: boolean;
  };
};

export type OpsEvent = keyof OpsFields;
export type OpsLine = (line: string) => void;

const toConsole: OpsLine = (line) => console.log(line);

export function opsLogLine<E extends OpsEvent>(event: E, fields: OpsFields[E]): string {
  return JSON.stringify({ event, ...fields });
}

export function opsLog<E extends OpsEvent>(
  event: E,
  fields: OpsFields[E],
  write: OpsLine = toConsole,
): void {
  write(opsLogLine(event, fields));
}

/** At most one `event_dropped` line per host and reason this often. */
export const DROP_LOG_INTERVAL_MS = 10_000;

type DropTally = { lastLineMs: number; unlogged: number };

/**
 * Logs drops, rate-limited per host and reason: the first drop of a quiet pair is logged at
 * once (with its detail); later ones within the interval are counted, and the next line (a
 * drop after the interval, or `flush`) says how many there were. Memory: one entry per pair
 * seen in the last interval.
 */
export class DropLog {
  readonly #tallies = new Map<string, DropTally>();

  constructor(
    private readonly nowMs: () => number = Date.now,
    private readonly write: OpsLine = toConsole,
    private readonly intervalMs = DROP_LOG_INTERVAL_MS,
  ) {}

  note(
    hostname: string,
    reason: string,
    extra: Pick<OpsFields["event_dropped"], "did" | "detail" | "ingester"> = {},
  ): void {
    const now = this.nowMs();
    const key = `${hostname}\u0000${reason}`;
    const tally = this.#tallies.get(key);
    if (tally && now - tally.lastLineMs < this.intervalMs) {
      tally.unlogged++;
      return;
    }
    const count = (tally?.unlogged ?? 0) + 1;
    this.#tallies.set(key, { lastLineMs: now, unlogged: 0 });
    opsLog("event_dropped", { hostname, reason, count, ...extra }, this.write);
  }

  /** Logs the drops counted but not yet logged whose interval is over; forgets quiet pairs. */
  flush(ingester: string | null = null): void {
    const now = this.nowMs();
    for (const [key, tally] of this.#tallies) {
      if (now - tally.lastLineMs < this.intervalMs) continue;
      if (tally.unlogged === 0) {
        this.#tallies.delete(key);
        continue;
      }
      const [hostname = "", reason = ""] = key.split("\u0000");
      opsLog("event_dropped", { hostname, reason, count: tally.unlogged, ingester }, this.write);
      tally.lastLineMs = now;
      tally.unlogged = 0;
    }
  }
}
