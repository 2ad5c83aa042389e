import type { RecordedEvent } from "../support/stream-recorder";

// What the fault suite checks after every restart: the relay's log, read from cursor 0, against
// what each PDS host itself sequenced (its own subscribeRepos from cursor 0). An event is named
// by the host and the upstream seq the host gave it, so a loss reads "localhost:1234 seqs
// 41-72", which is what one needs to find the window that lost it.

export type HostLog = {
  hostname: string;
  /** Every event the host sequenced, in its order. */
  events: RecordedEvent[];
  /**
   * The host's head when the relay first subscribed to it: a new host is read from its live
   * offset, so only events after this are owed.
   */
  floor: number;
};

export type LogComparison = {
  /**
   * Events a host sequenced after the relay subscribed that the relay's log does not have.
   * `after` is the last upstream seq of that host the relay does have: missing seqs below it
   * are a hole (skipped for good), above it a tail (never delivered, or stuck upstream).
   */
  missing: {
    hostname: string;
    count: number;
    upstreamSeqs: string;
    after: number | null;
    /** Every missing seq is above `after`: nothing the relay has came after them. */
    tailOnly: boolean;
  }[];
  /** Events the relay's log holds more than once. */
  duplicated: { hostname: string; upstreamSeq: number; relaySeqs: number[] }[];
  /** An account's events relayed in another order than its host sequenced them. */
  outOfOrder: { did: string; upstreamSeqs: number[] }[];
  /** Places where relay seqs are not contiguous. */
  seqGaps: { after: number; next: number }[];
  /** Events in the relay's log that no host sequenced (sample). */
  unknown: string[];
  relayEvents: number;
  owedEvents: number;
};

export function isClean(c: LogComparison): boolean {
  return (
    c.missing.length === 0 &&
    c.duplicated.length === 0 &&
    c.outOfOrder.length === 0 &&
    c.seqGaps.length === 0 &&
    c.unknown.length === 0
  );
}

/** "3-7, 9, 12-13" */
export function ranges(seqs: number[]): string {
  const sorted = [...seqs].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] as number) + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(", ");
}

function didOf(key: string): string {
  return key.split(" ")[1] ?? "";
}

/**
 * `retainedOnly`: retention may have deleted the head of the relay's log, so each host is owed
 * only its events from the first one the relay still holds (a loss inside what is retained is
 * still found; one exactly at the retention edge is not).
 */
export function compareLogs(
  hosts: HostLog[],
  relay: RecordedEvent[],
  options: { retainedOnly?: boolean } = {},
): LogComparison {
  const origin = new Map<string, { hostname: string; upstreamSeq: number }>();
  for (const host of hosts)
    for (const e of host.events)
      if (e.seq !== null) origin.set(e.key, { hostname: host.hostname, upstreamSeq: e.seq });

  const sequenced = relay.filter((e) => e.seq !== null);
  const seen = new Map<string, number[]>();
  const unknown: string[] = [];
  const seqGaps: LogComparison["seqGaps"] = [];
  const lastUpstreamByDid = new Map<string, number>();
  const outOfOrder = new Map<string, number[]>();
  const firstSeenByHost = new Map<string, number>();
  let previous: number | undefined;
  for (const e of sequenced) {
    const seq = e.seq as number;
    if (previous !== undefined && seq !== previous + 1)
      seqGaps.push({ after: previous, next: seq });
    previous = seq;
    const from = origin.get(e.key);
    if (!from) {
      if (unknown.length < 5) unknown.push(`relay seq ${seq}: ${e.key}`);
      continue;
    }
    seen.set(e.key, [...(seen.get(e.key) ?? []), seq]);
    if (!firstSeenByHost.has(from.hostname)) firstSeenByHost.set(from.hostname, from.upstreamSeq);
    const did = didOf(e.key);
    const last = lastUpstreamByDid.get(did);
    if (last !== undefined && from.upstreamSeq < last)
      outOfOrder.set(did, [...(outOfOrder.get(did) ?? [last]), from.upstreamSeq]);
    lastUpstreamByDid.set(did, Math.max(last ?? 0, from.upstreamSeq));
  }

  const missing: LogComparison["missing"] = [];
  const duplicated: LogComparison["duplicated"] = [];
  let owedEvents = 0;
  for (const host of hosts) {
    const from = options.retainedOnly
      ? Math.max(host.floor, (firstSeenByHost.get(host.hostname) ?? Infinity) - 1)
      : host.floor;
    const lost: number[] = [];
    let lastRelayed: number | null = null;
    for (const e of host.events) {
      if (e.seq === null || e.seq <= from) continue;
      owedEvents++;
      const relaySeqs = seen.get(e.key) ?? [];
      if (relaySeqs.length === 0) lost.push(e.seq);
      else lastRelayed = e.seq;
      if (relaySeqs.length > 1)
        duplicated.push({ hostname: host.hostname, upstreamSeq: e.seq, relaySeqs });
    }
    if (lost.length > 0)
      missing.push({
        hostname: host.hostname,
        count: lost.length,
        upstreamSeqs: ranges(lost),
        after: lastRelayed,
        tailOnly: lost.every((seq) => lastRelayed === null || seq > lastRelayed),
      });
  }
  return {
    missing,
    duplicated,
    outOfOrder: [...outOfOrder].map(([did, upstreamSeqs]) => ({ did, upstreamSeqs })),
    seqGaps,
    unknown,
    relayEvents: sequenced.length,
    owedEvents,
  };
}

export type ConsumerComparison = {
  /** Relay seqs in the log the consumer never received. */
  missingSeqs: string;
  /** Relay seqs the consumer received more than once. */
  duplicatedSeqs: string;
  /** Seqs where the consumer got another event than the log holds. */
  mismatched: number[];
};

/** A consumer that resumed with its last seq after each restart must have the log exactly once. */
export function compareConsumer(
  consumer: RecordedEvent[],
  log: RecordedEvent[],
  fromSeq: number,
): ConsumerComparison {
  const logBySeq = new Map<number, string>();
  for (const e of log) if (e.seq !== null && e.seq > fromSeq) logBySeq.set(e.seq, e.key);
  const got = new Map<number, number>();
  const mismatched: number[] = [];
  for (const e of consumer) {
    if (e.seq === null || e.seq <= fromSeq) continue;
    got.set(e.seq, (got.get(e.seq) ?? 0) + 1);
    const expected = logBySeq.get(e.seq);
    if (expected !== undefined && expected !== e.key) mismatched.push(e.seq);
  }
  const missing = [...logBySeq.keys()].filter((s) => !got.has(s));
  const dups = [...got].filter(([, n]) => n > 1).map(([s]) => s);
  return {
    missingSeqs: ranges(missing),
    duplicatedSeqs: ranges(dups),
    mismatched: mismatched.slice(0, 10),
  };
}
