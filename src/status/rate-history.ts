// A short, bounded history of event counters in memory, for the status pages' charts. The
// ingesters report each host's cumulative counters every HOST_REPORT_INTERVAL_SECONDS; keeping
// the last value seen in each minute is enough to draw events/s per minute, and costs no row
// written (docs/cost.md). It lives only as long as the object holding it stays awake, so the
// page says since when it knows.

export const MINUTE_MS = 60_000;
/** Minutes of history kept per host and shown on the pages. */
export const HISTORY_MINUTES = 30;

export type CounterTotals = { accepted: number; dropped: Record<string, number> };

/** The last cumulative counters seen in one minute (minute = floor(ms / 60 s)). */
type MinuteSample = {
  minute: number;
  ms: number;
  accepted: number;
  dropped: Record<string, number>;
};

/** Events/s in one whole minute; null where the history does not reach back so far. */
export type MinuteRate = {
  /** Start of the minute, ms since the epoch. */
  startMs: number;
  accepted: number | null;
  /** Summed over reasons. */
  dropped: number | null;
  droppedByReason: Record<string, number>;
};

function sumValues(record: Record<string, number>): number {
  let n = 0;
  for (const v of Object.values(record)) n += v;
  return n;
}

export class CounterHistory {
  readonly #samples = new Map<string, MinuteSample[]>();
  /** Each key's first sample: the base of its first minute, which has no minute before it. */
  readonly #firstSamples = new Map<string, MinuteSample>();
  readonly #minutes: number;

  constructor(minutes = HISTORY_MINUTES) {
    this.#minutes = minutes;
  }

  /** Notes a key's cumulative counters at `nowMs`. At most `minutes + 1` samples per key. */
  record(key: string, nowMs: number, totals: CounterTotals): void {
    const minute = Math.floor(nowMs / MINUTE_MS);
    const sample = { minute, ms: nowMs, accepted: totals.accepted, dropped: { ...totals.dropped } };
    const samples = this.#samples.get(key);
    if (!samples) {
      this.#samples.set(key, [sample]);
      this.#firstSamples.set(key, sample);
      return;
    }
    const last = samples.at(-1);
    if (last && last.minute === minute) samples[samples.length - 1] = sample;
    else samples.push(sample);
    // one sample older than the window is kept: it is the base of the window's first minute
    while (samples.length > 1 && (samples[1] as MinuteSample).minute < minute - this.#minutes)
      samples.shift();
  }

  /** The sum of `series` (each `rates(…, nowMs)`), over the same minutes. */
  sumRates(series: MinuteRate[][], nowMs: number): MinuteRate[] {
    return sumRates(series, this.rates("", nowMs));
  }

  forget(key: string): void {
    this.#samples.delete(key);
    this.#firstSamples.delete(key);
  }

  /**
   * Events/s in each of the last `minutes` minutes, oldest first, the current one last. A
   * minute's rate is the growth of the counters from the last value seen before the minute to
   * the last value seen in it (a quiet host sends the same numbers), over the time between the
   * two (in a key's first minute, from its first sample). The current minute has a rate only
   * once a report arrived in it. Counters that went
   * down (a host's counters restart after a hand-over) count as zero.
   */
  rates(key: string, nowMs: number, minutes = this.#minutes): MinuteRate[] {
    const samples = this.#samples.get(key) ?? [];
    const first = this.#firstSamples.get(key);
    const currentMinute = Math.floor(nowMs / MINUTE_MS);
    const valueAt = (minute: number): MinuteSample | null => {
      let found: MinuteSample | null = null;
      for (const s of samples) {
        if (s.minute > minute) break;
        found = s;
      }
      return found;
    };
    const out: MinuteRate[] = [];
    for (let minute = currentMinute - minutes + 1; minute <= currentMinute; minute++) {
      const after = valueAt(minute);
      const before =
        valueAt(minute - 1) ??
        (first && first.minute === minute && after && after.ms > first.ms ? first : null);
      const unknown = !before || !after || (minute === currentMinute && after.minute !== minute);
      if (unknown) {
        out.push({
          startMs: minute * MINUTE_MS,
          accepted: null,
          dropped: null,
          droppedByReason: {},
        });
        continue;
      }
      const seconds = Math.max(1, (after.ms - before.ms) / 1000);
      const droppedByReason: Record<string, number> = {};
      for (const [reason, n] of Object.entries(after.dropped)) {
        const grew = n - (before.dropped[reason] ?? 0);
        if (grew > 0) droppedByReason[reason] = grew / seconds;
      }
      out.push({
        startMs: minute * MINUTE_MS,
        accepted: Math.max(0, after.accepted - before.accepted) / seconds,
        dropped: sumValues(droppedByReason),
        droppedByReason,
      });
    }
    return out;
  }
}

/**
 * Minute-by-minute sums of several series made by `rates` for the same `nowMs` and length (the
 * relay from its hosts); a minute no series knows stays unknown.
 */
export function sumRates(series: MinuteRate[][], template: MinuteRate[]): MinuteRate[] {
  return template.map((slot, i) => {
    let accepted: number | null = null;
    let dropped: number | null = null;
    const droppedByReason: Record<string, number> = {};
    for (const s of series) {
      const rate = s[i];
      if (!rate || rate.accepted === null) continue;
      accepted = (accepted ?? 0) + rate.accepted;
      dropped = (dropped ?? 0) + (rate.dropped ?? 0);
      for (const [reason, n] of Object.entries(rate.droppedByReason))
        droppedByReason[reason] = (droppedByReason[reason] ?? 0) + n;
    }
    return { startMs: slot.startMs, accepted, dropped, droppedByReason };
  });
}

/** Mean events/s over the last `minutes` of a series that has data (null if none has). */
export function recentRate(
  rates: MinuteRate[],
  minutes: number,
  field: "accepted" | "dropped",
): number | null {
  const known = rates
    .slice(-minutes)
    .map((r) => r[field])
    .filter((v): v is number => v !== null);
  return known.length === 0 ? null : known.reduce((a, b) => a + b, 0) / known.length;
}

/** What one ingester object knows of its hosts' recent rates (HostIngester.statusRates). */
export type IngesterRates = {
  /** When the object last started: its history reaches no further back. */
  startedMs: number;
  /** Its hosts' events/s per minute, summed. */
  total: MinuteRate[];
  /** Each host's mean accepted events/s over the last `recentMinutes`. */
  recentByHost: Record<string, number | null>;
};

export function ingesterRates(
  history: CounterHistory,
  hostnames: string[],
  nowMs: number,
  startedMs: number,
  recentMinutes: number,
): IngesterRates {
  const series = hostnames.map((h) => history.rates(h, nowMs));
  const recentByHost: Record<string, number | null> = {};
  hostnames.forEach((h, i) => {
    recentByHost[h] = recentRate(series[i] ?? [], recentMinutes, "accepted");
  });
  return { startedMs, total: history.sumRates(series, nowMs), recentByHost };
}

/**
 * The relay's rates from its ingesters' answers; `sinceMs` is the latest start among them (the
 * history is complete from then on).
 */
export function mergeIngesterRates(
  answers: IngesterRates[],
  nowMs: number,
  minutes = HISTORY_MINUTES,
): { rates: MinuteRate[]; sinceMs: number | null; recentByHost: Record<string, number | null> } {
  const template = new CounterHistory(minutes).rates("", nowMs);
  const recentByHost: Record<string, number | null> = {};
  for (const a of answers) Object.assign(recentByHost, a.recentByHost);
  return {
    rates: sumRates(
      answers.map((a) => a.total),
      template,
    ),
    sinceMs: answers.length === 0 ? null : Math.max(...answers.map((a) => a.startedMs)),
    recentByHost,
  };
}
