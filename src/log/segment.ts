import { iterateRecords, RECORD_HEADER_BYTES } from "./records";

// An R2 segment is immutable: records, then a sparse index, then a fixed trailer. A reader that
// wants seq N reads the trailer (last TRAILER_BYTES), the index, and then only the byte range
// from the index entry at or before N: it never has to read the whole object.
// Layout (big-endian) — docs/segment-format.md is the long form:
//   records   : [u64 seq][u32 len][frame] ...
//   index     : entries of [u64 seq][u32 byte offset of that record], one every INDEX_STRIDE records
//   trailer   : "FHS1" | u32 version | u64 firstSeq | u64 lastSeq | u32 count | u32 indexOffset

export const SEGMENT_MAGIC = 0x46485331; // "FHS1"
export const SEGMENT_VERSION = 1;
export const TRAILER_BYTES = 32;
export const INDEX_ENTRY_BYTES = 12;
export const INDEX_STRIDE = 64;
export const SEGMENT_KEY_PREFIX = "segments/";

export type SegmentTrailer = {
  firstSeq: number;
  lastSeq: number;
  count: number;
  indexOffset: number;
};
export type SegmentIndexEntry = { seq: number; offset: number };

export class InvalidSegmentError extends Error {
  override readonly name = "InvalidSegment";
}

/** A segment's public name: its first seq, zero-padded to 20 digits (served as /segments/<name>). */
export const SEGMENT_NAME_RE = /^\d{20}$/;

export function segmentName(firstSeq: number): string {
  return String(firstSeq).padStart(20, "0");
}

/** Segment keys are zero-padded so that R2 lists them in seq order. */
export function segmentKey(firstSeq: number): string {
  return `${SEGMENT_KEY_PREFIX}${segmentName(firstSeq)}`;
}

function writeU64(view: DataView, offset: number, n: number): void {
  view.setUint32(offset, Math.floor(n / 0x100000000));
  view.setUint32(offset + 4, n >>> 0);
}

function readU64(view: DataView, offset: number): number {
  return view.getUint32(offset) * 0x100000000 + view.getUint32(offset + 4);
}

/** Builds a segment from a concatenation of records (in seq order, at least one). */
export function encodeSegment(records: Uint8Array): { bytes: Uint8Array; trailer: SegmentTrailer } {
  const index: SegmentIndexEntry[] = [];
  let firstSeq = -1;
  let lastSeq = -1;
  let count = 0;
  for (const record of iterateRecords(records)) {
    if (count % INDEX_STRIDE === 0) index.push({ seq: record.seq, offset: record.offset });
    if (firstSeq < 0) firstSeq = record.seq;
    lastSeq = record.seq;
    count++;
  }
  if (count === 0) throw new InvalidSegmentError("a segment needs at least one record");
  const indexOffset = records.byteLength;
  const bytes = new Uint8Array(indexOffset + index.length * INDEX_ENTRY_BYTES + TRAILER_BYTES);
  bytes.set(records, 0);
  const view = new DataView(bytes.buffer);
  let pos = indexOffset;
  for (const entry of index) {
    writeU64(view, pos, entry.seq);
    view.setUint32(pos + 8, entry.offset);
    pos += INDEX_ENTRY_BYTES;
  }
  view.setUint32(pos, SEGMENT_MAGIC);
  view.setUint32(pos + 4, SEGMENT_VERSION);
  writeU64(view, pos + 8, firstSeq);
  writeU64(view, pos + 16, lastSeq);
  view.setUint32(pos + 24, count);
  view.setUint32(pos + 28, indexOffset);
  return { bytes, trailer: { firstSeq, lastSeq, count, indexOffset } };
}

export function decodeTrailer(trailer: Uint8Array): SegmentTrailer {
  if (trailer.byteLength !== TRAILER_BYTES) throw new InvalidSegmentError("bad trailer size");
  const view = new DataView(trailer.buffer, trailer.byteOffset, trailer.byteLength);
  if (view.getUint32(0) !== SEGMENT_MAGIC) throw new InvalidSegmentError("bad segment magic");
  if (view.getUint32(4) !== SEGMENT_VERSION)
    throw new InvalidSegmentError("unsupported segment version");
  return {
    firstSeq: readU64(view, 8),
    lastSeq: readU64(view, 16),
    count: view.getUint32(24),
    indexOffset: view.getUint32(28),
  };
}

export function decodeIndex(index: Uint8Array): SegmentIndexEntry[] {
  if (index.byteLength % INDEX_ENTRY_BYTES !== 0) throw new InvalidSegmentError("bad index size");
  const view = new DataView(index.buffer, index.byteOffset, index.byteLength);
  const entries: SegmentIndexEntry[] = [];
  for (let pos = 0; pos < index.byteLength; pos += INDEX_ENTRY_BYTES) {
    entries.push({ seq: readU64(view, pos), offset: view.getUint32(pos + 8) });
  }
  return entries;
}

/** Byte offset of the indexed record at or before the first record with seq > afterSeq. */
export function seekOffset(index: readonly SegmentIndexEntry[], afterSeq: number): number {
  let offset = 0;
  for (const entry of index) {
    if (entry.seq > afterSeq + 1) break;
    offset = entry.offset;
  }
  return offset;
}

/** Where the records of a segment end (the index starts). */
export function recordsEnd(trailer: SegmentTrailer): number {
  return trailer.indexOffset;
}

/**
 * Given a buffer of bytes read from `start` of a segment's records, returns the prefix that
 * holds only whole records (a range read may end mid-record).
 */
export function wholeRecordsPrefix(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset + RECORD_HEADER_BYTES <= bytes.byteLength) {
    const end = offset + RECORD_HEADER_BYTES + view.getUint32(offset + 8);
    if (end > bytes.byteLength) break;
    offset = end;
  }
  return bytes.subarray(0, offset);
}
