// A record is one sequenced frame as the relay stores it: `[u64 seq][u32 frame length][frame]`,
// big-endian. A hot-log batch BLOB and the body of an R2 segment are both plain concatenations of
// records, so sealing concatenates BLOBs and replay slices bytes: a frame is encoded once, when
// its seq is assigned, and never again.

export const RECORD_HEADER_BYTES = 12;

export type LogRecord = { seq: number; frame: Uint8Array };

export class InvalidRecordsError extends Error {
  override readonly name = "InvalidRecords";
}

function writeU64(view: DataView, offset: number, n: number): void {
  view.setUint32(offset, Math.floor(n / 0x100000000));
  view.setUint32(offset + 4, n >>> 0);
}

function readU64(view: DataView, offset: number): number {
  return view.getUint32(offset) * 0x100000000 + view.getUint32(offset + 4);
}

export function recordsByteLength(records: readonly LogRecord[]): number {
  let total = 0;
  for (const r of records) total += RECORD_HEADER_BYTES + r.frame.byteLength;
  return total;
}

export function encodeRecords(records: readonly LogRecord[]): Uint8Array {
  const out = new Uint8Array(recordsByteLength(records));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const r of records) {
    writeU64(view, offset, r.seq);
    view.setUint32(offset + 8, r.frame.byteLength);
    out.set(r.frame, offset + RECORD_HEADER_BYTES);
    offset += RECORD_HEADER_BYTES + r.frame.byteLength;
  }
  return out;
}

/** Yields the records of a concatenation, with views into `bytes` (no copies). */
export function* iterateRecords(bytes: Uint8Array): Generator<LogRecord & { offset: number }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset < bytes.byteLength) {
    if (offset + RECORD_HEADER_BYTES > bytes.byteLength)
      throw new InvalidRecordsError("truncated record header");
    const seq = readU64(view, offset);
    const length = view.getUint32(offset + 8);
    const start = offset + RECORD_HEADER_BYTES;
    if (start + length > bytes.byteLength) throw new InvalidRecordsError("truncated record frame");
    yield { seq, frame: bytes.subarray(start, start + length), offset };
    offset = start + length;
  }
}

/**
 * Bytes that the first record of `bytes` occupies (header included), read from its header alone;
 * null when not even a header is there. Lets a reader see that a stored chunk holds only the
 * start of a record, without walking it.
 */
export function firstRecordByteLength(bytes: Uint8Array): number | null {
  if (bytes.byteLength < RECORD_HEADER_BYTES) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return RECORD_HEADER_BYTES + view.getUint32(8);
}

/** The records of `bytes` whose seq is greater than `afterSeq` (records are in seq order). */
export function recordsAfter(bytes: Uint8Array, afterSeq: number): Uint8Array {
  for (const record of iterateRecords(bytes)) {
    if (record.seq > afterSeq) return bytes.subarray(record.offset);
  }
  return bytes.subarray(bytes.byteLength);
}

/**
 * Splits a concatenation of records at a byte budget, on a record boundary, keeping at least one
 * record so progress is always made. Returns [head, rest].
 */
export function splitRecords(bytes: Uint8Array, maxBytes: number): [Uint8Array, Uint8Array] {
  let end = 0;
  for (const record of iterateRecords(bytes)) {
    const next = record.offset + RECORD_HEADER_BYTES + record.frame.byteLength;
    if (end > 0 && next > maxBytes) break;
    end = next;
  }
  return [bytes.subarray(0, end), bytes.subarray(end)];
}

/** First and last seq of a non-empty concatenation. */
export function recordsSeqRange(
  bytes: Uint8Array,
): { firstSeq: number; lastSeq: number; count: number } | null {
  let first: number | null = null;
  let last = 0;
  let count = 0;
  for (const record of iterateRecords(bytes)) {
    if (first === null) first = record.seq;
    last = record.seq;
    count++;
  }
  return first === null ? null : { firstSeq: first, lastSeq: last, count };
}
