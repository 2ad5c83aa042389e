// When the relay sequenced each event, exactly, without a time per event: the Sequencer gives each
// group commit (hot-log row) one start time and its events consecutive microseconds, so a row is
// one anchor `(firstSeq, firstUs)` and event `seq` of it has `firstUs + (seq - firstSeq)`. A row
// starts at max(now, the previous row's last time + 1 µs), so times strictly increase with seq
// whatever the wall clock does (docs/behaviours.md "Jetstream time_us").
//
// A run of rows (a delivery, a hot read, a segment) carries the anchors of its rows in seq order;
// an anchor that continues the previous one's microseconds (the rows of one group commit, or
// rows committed faster than the clock moves) is left out, since it adds nothing.

/** From `firstSeq` until the next anchor, event `seq` has time `firstUs + (seq - firstSeq)` µs. */
export type TimeAnchor = { firstSeq: number; firstUs: number };

/** The first time of a row committed at `nowMs` after a row whose last event has `lastUs`. */
export function rowFirstUs(nowMs: number, lastUs: number): number {
  return Math.max(nowMs * 1000, lastUs + 1);
}

/** Adds `anchor` (after every anchor of `anchors` in seq order) unless it continues the last one. */
export function pushAnchor(anchors: TimeAnchor[], anchor: TimeAnchor): void {
  const last = anchors[anchors.length - 1];
  if (last && anchor.firstUs - last.firstUs === anchor.firstSeq - last.firstSeq) return;
  anchors.push(anchor);
}

/** The anchors of `later` appended to `anchors` (both in seq order, `later` after). */
export function appendAnchors(anchors: TimeAnchor[], later: readonly TimeAnchor[]): void {
  for (const anchor of later) pushAnchor(anchors, anchor);
}

/** Index of the last anchor whose first seq is at or below `seq` (0 when none is). */
function anchorIndex(anchors: readonly TimeAnchor[], seq: number): number {
  let lo = 0;
  let hi = anchors.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((anchors[mid] as TimeAnchor).firstSeq <= seq) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The time of `seq`, an event of the run the anchors describe. */
export function timeOfSeq(anchors: readonly TimeAnchor[], seq: number): number {
  const anchor = anchors[anchorIndex(anchors, seq)];
  if (!anchor) throw new Error("no time anchors");
  return anchor.firstUs + (seq - anchor.firstSeq);
}

/**
 * The first seq, of the run the anchors describe (ending at `lastSeq`), whose time is at or after
 * `us`; null when every event of the run is earlier. Times increase with seq, so a binary search
 * over the anchors, then the offset inside one.
 */
export function firstSeqAtOrAfter(
  anchors: readonly TimeAnchor[],
  lastSeq: number,
  us: number,
): number | null {
  const lastAnchor = anchors[anchors.length - 1];
  if (!lastAnchor || lastAnchor.firstUs + (lastSeq - lastAnchor.firstSeq) < us) return null;
  // the first anchor whose run ends at or after us
  let lo = 0;
  let hi = anchors.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const anchor = anchors[mid] as TimeAnchor;
    const next = anchors[mid + 1] as TimeAnchor;
    if (anchor.firstUs + (next.firstSeq - 1 - anchor.firstSeq) >= us) hi = mid;
    else lo = mid + 1;
  }
  const anchor = anchors[lo] as TimeAnchor;
  return anchor.firstSeq + Math.max(0, us - anchor.firstUs);
}

// Packed form, for the segment index (one BLOB per segment): a format byte, the first anchor's
// seq and time as unsigned LEB128 varints, then per anchor the seq step and, zigzag-encoded, how
// much more time passed than the step (0 for rows committed back to back): about 4-6 bytes an
// anchor. Arithmetic, not bit operations: the values pass 2^32.

const PACKED_FORMAT = 1;

function writeVarint(out: number[], value: number): void {
  let v = value;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function zigzag(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

function unzigzag(value: number): number {
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

export function encodeAnchors(anchors: readonly TimeAnchor[]): Uint8Array {
  const out: number[] = [PACKED_FORMAT];
  let previous: TimeAnchor | null = null;
  for (const anchor of anchors) {
    if (!previous) {
      writeVarint(out, anchor.firstSeq);
      writeVarint(out, anchor.firstUs);
    } else {
      const step = anchor.firstSeq - previous.firstSeq;
      if (step <= 0) throw new Error("time anchors out of seq order");
      writeVarint(out, step);
      writeVarint(out, zigzag(anchor.firstUs - previous.firstUs - step));
    }
    previous = anchor;
  }
  return Uint8Array.from(out);
}

export function decodeAnchors(bytes: Uint8Array): TimeAnchor[] {
  if (bytes[0] !== PACKED_FORMAT) throw new Error(`unknown time anchor format ${bytes[0]}`);
  let offset = 1;
  const readVarint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      const byte = bytes[offset++];
      if (byte === undefined) throw new Error("truncated time anchors");
      value += (byte % 128) * scale;
      if (byte < 128) return value;
      scale *= 128;
    }
  };
  const anchors: TimeAnchor[] = [];
  let previous: TimeAnchor | null = null;
  while (offset < bytes.byteLength) {
    let anchor: TimeAnchor;
    if (!previous) {
      const firstSeq = readVarint();
      anchor = { firstSeq, firstUs: readVarint() };
    } else {
      const step = readVarint();
      const extra = unzigzag(readVarint());
      anchor = { firstSeq: previous.firstSeq + step, firstUs: previous.firstUs + step + extra };
    }
    anchors.push(anchor);
    previous = anchor;
  }
  return anchors;
}
