// `time_us` of Jetstream messages: when the relay sequenced the event, in unix microseconds. The
// relay keeps one time per group commit (a hot-log row's `created_ms`) and, once sealed, only a
// segment's first and last commit times, so an event's time is derived from whichever of these
// the reader has (docs/behaviours.md "Jetstream time_us"):
//   hot row:  created_ms * 1000 + the event's place in the row (at most 999), so events of one
//             commit are distinct and stay below the next millisecond;
//   segment:  linear between first_ms and last_ms over the segment's seqs;
//   live:     the time the Fanout received the batch, plus the place in the batch (at most 999).
// The three can differ by a little for the same event, so each consumer's times are clamped to
// never go backwards. A cursor T maps to the first segment or hot row that can hold times >= T,
// and the replay skips what is still before T: "events at or after T" to within that rule.

/** Gives each seq of a run of records its time. */
export type TimeAnchor = (seq: number) => number;

export function hotRowsAnchor(rows: readonly { firstSeq: number; ms: number }[]): TimeAnchor {
  return (seq) => {
    // rows are few per read; the last row starting at or before seq holds it
    let row = rows[0];
    for (const r of rows) {
      if (r.firstSeq > seq) break;
      row = r;
    }
    if (!row) return 0;
    return row.ms * 1000 + Math.min(seq - row.firstSeq, 999);
  };
}

export function segmentAnchor(segment: {
  firstSeq: number;
  lastSeq: number;
  firstMs: number;
  lastMs: number;
}): TimeAnchor {
  const spanUs = Math.max(0, segment.lastMs - segment.firstMs) * 1000;
  const spanSeqs = Math.max(1, segment.lastSeq - segment.firstSeq);
  return (seq) =>
    segment.firstMs * 1000 +
    Math.floor((Math.min(Math.max(seq - segment.firstSeq, 0), spanSeqs) * spanUs) / spanSeqs);
}

export function receivedAnchor(firstSeq: number, receivedMs: number): TimeAnchor {
  return (seq) => receivedMs * 1000 + Math.min(Math.max(seq - firstSeq, 0), 999);
}
