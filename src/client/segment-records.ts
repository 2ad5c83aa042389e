import type { LogRecord } from "../log/records";
import { iterateRecords } from "../log/records";
import {
  decodeIndex,
  decodeTrailer,
  InvalidSegmentError,
  seekOffset,
  TRAILER_BYTES,
} from "../log/segment";

// A downloaded segment (docs/segment-format.md) read with the same code the relay writes it
// with: trailer, index, then the records after the cursor, as views into the downloaded bytes.

export type ExpectedRange = { firstSeq: number; lastSeq: number };

/**
 * The records of a whole segment with seq > afterSeq, in order. The trailer must agree with the
 * plan's range (a wrong or truncated object is an error, never a silent hole).
 */
export function* segmentRecordsAfter(
  bytes: Uint8Array,
  afterSeq: number,
  expected?: ExpectedRange,
): Generator<LogRecord> {
  if (bytes.byteLength < TRAILER_BYTES)
    throw new InvalidSegmentError("segment shorter than its trailer");
  const trailerStart = bytes.byteLength - TRAILER_BYTES;
  const trailer = decodeTrailer(bytes.subarray(trailerStart));
  if (trailer.indexOffset > trailerStart)
    throw new InvalidSegmentError("index offset past the trailer");
  if (
    expected &&
    (trailer.firstSeq !== expected.firstSeq || trailer.lastSeq !== expected.lastSeq)
  ) {
    throw new InvalidSegmentError(
      `segment holds ${trailer.firstSeq}..${trailer.lastSeq}, the plan said ${expected.firstSeq}..${expected.lastSeq}`,
    );
  }
  const index = decodeIndex(bytes.subarray(trailer.indexOffset, trailerStart));
  const start = seekOffset(index, afterSeq);
  let previous = -1;
  let count = 0;
  for (const record of iterateRecords(bytes.subarray(start, trailer.indexOffset))) {
    if (record.seq <= previous)
      throw new InvalidSegmentError(`seq ${record.seq} after ${previous}`);
    previous = record.seq;
    count++;
    if (record.seq > afterSeq) yield { seq: record.seq, frame: record.frame };
  }
  if (start === 0 && count !== trailer.count)
    throw new InvalidSegmentError(
      `segment holds ${count} records, its trailer says ${trailer.count}`,
    );
  if (count > 0 && previous !== trailer.lastSeq)
    throw new InvalidSegmentError(
      `segment ends at ${previous}, its trailer says ${trailer.lastSeq}`,
    );
}
