import { type TimeAnchor, timeOfSeq } from "../log/time-anchors";

// `time_us` of Jetstream messages: when the relay sequenced the event, in unix microseconds,
// exactly as the Sequencer assigned it (log/time-anchors.ts). Live deliveries, hot reads and
// sealed segments all carry the anchors of their rows, so one event has one time wherever it is
// read from, and times strictly increase with seq (docs/behaviours.md "Jetstream time_us").
//
// Segments sealed before the relay kept anchors have only their first and last commit times: their
// events are timed linearly between the two (legacySegmentTimes), the one estimate left.

/** Gives each seq of a run of records its time. */
export type TimeOf = (seq: number) => number;

export function exactTimes(anchors: readonly TimeAnchor[]): TimeOf {
  return (seq) => timeOfSeq(anchors, seq);
}

/** A segment sealed before time anchors: linear between its first and last commit times. */
export function legacySegmentTimes(segment: {
  firstSeq: number;
  lastSeq: number;
  firstMs: number;
  lastMs: number;
}): TimeOf {
  const spanUs = Math.max(0, segment.lastMs - segment.firstMs) * 1000;
  const spanSeqs = Math.max(1, segment.lastSeq - segment.firstSeq);
  return (seq) =>
    segment.firstMs * 1000 +
    Math.floor((Math.min(Math.max(seq - segment.firstSeq, 0), spanSeqs) * spanUs) / spanSeqs);
}
