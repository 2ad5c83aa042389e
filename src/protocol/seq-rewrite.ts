import { ProtocolError } from "./errors";

// The relay gives every event its own seq, and this is the only change it makes to a frame.
// Decoding and re-encoding the body would copy and re-hash nothing, but it would walk every
// block and op; instead this scans the header and the top level of the body map by their CBOR
// length headers (skipping `blocks` in O(1)), finds the `seq` value and splices in the new
// integer. Map key order depends on keys only, so the result is still canonical DAG-CBOR.

const SEQ_KEY = [0x63, 0x73, 0x65, 0x71]; // text(3) "seq"

interface Head {
  major: number;
  /** Integer value, or length/count for strings, arrays and maps. */
  value: number;
  headerLength: number;
}

function readHead(buf: Uint8Array, pos: number): Head {
  const first = buf[pos];
  if (first === undefined) throw new ProtocolError("InvalidFrame", "truncated CBOR");
  const major = first >> 5;
  const info = first & 31;
  if (info < 24) return { major, value: info, headerLength: 1 };
  const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
  if (size === 0) throw new ProtocolError("InvalidFrame", "indefinite or reserved CBOR length");
  if (pos + 1 + size > buf.length) throw new ProtocolError("InvalidFrame", "truncated CBOR");
  let value = 0;
  for (let i = 1; i <= size; i++) value = value * 256 + (buf[pos + i] as number);
  return { major, value, headerLength: 1 + size };
}

/** Returns the offset just past the CBOR item starting at `pos`. */
function skipItem(buf: Uint8Array, pos: number, depth: number): number {
  if (depth > 64) throw new ProtocolError("InvalidFrame", "CBOR nested too deeply");
  const head = readHead(buf, pos);
  let next = pos + head.headerLength;
  switch (head.major) {
    case 0:
    case 1:
    case 7:
      return next;
    case 2:
    case 3:
      next += head.value;
      break;
    case 4:
      for (let i = 0; i < head.value; i++) next = skipItem(buf, next, depth + 1);
      break;
    case 5:
      for (let i = 0; i < head.value * 2; i++) next = skipItem(buf, next, depth + 1);
      break;
    case 6:
      next = skipItem(buf, next, depth + 1);
      break;
  }
  if (next > buf.length) throw new ProtocolError("InvalidFrame", "truncated CBOR");
  return next;
}

function isSeqKey(buf: Uint8Array, pos: number): boolean {
  return (
    buf[pos] === SEQ_KEY[0] &&
    buf[pos + 1] === SEQ_KEY[1] &&
    buf[pos + 2] === SEQ_KEY[2] &&
    buf[pos + 3] === SEQ_KEY[3]
  );
}

/** Locates the byte range of the body's top-level `seq` value, or null if there is none. */
function findSeqValue(frame: Uint8Array): { start: number; end: number; value: number } | null {
  const bodyStart = skipItem(frame, 0, 0);
  const map = readHead(frame, bodyStart);
  if (map.major !== 5) throw new ProtocolError("InvalidFrame", "frame body is not a map");
  let pos = bodyStart + map.headerLength;
  for (let i = 0; i < map.value; i++) {
    const keyStart = pos;
    pos = skipItem(frame, pos, 1);
    if (pos - keyStart === 4 && isSeqKey(frame, keyStart)) {
      const head = readHead(frame, pos);
      if (head.major !== 0)
        throw new ProtocolError("InvalidFrame", "seq is not an unsigned integer");
      return { start: pos, end: pos + head.headerLength, value: head.value };
    }
    pos = skipItem(frame, pos, 1);
  }
  return null;
}

/** Minimal CBOR encoding of an unsigned integer (major type 0). */
export function encodeUint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ProtocolError("InvalidFrame", `seq must be a non-negative safe integer, got ${n}`);
  if (n < 24) return Uint8Array.of(n);
  if (n < 0x100) return Uint8Array.of(24, n);
  if (n < 0x10000) return Uint8Array.of(25, n >> 8, n & 0xff);
  if (n < 0x100000000)
    return Uint8Array.of(26, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  const out = new Uint8Array(9);
  out[0] = 27;
  const high = Math.floor(n / 0x100000000);
  const low = n >>> 0;
  new DataView(out.buffer).setUint32(1, high);
  new DataView(out.buffer).setUint32(5, low);
  return out;
}

/** The seq of a frame's body, or null for frames without one (#info, errors). */
export function readFrameSeq(frame: Uint8Array): number | null {
  return findSeqValue(frame)?.value ?? null;
}

/** Returns a copy of `frame` whose body `seq` is `seq`; every other byte is kept. */
export function rewriteFrameSeq(frame: Uint8Array, seq: number): Uint8Array {
  const found = findSeqValue(frame);
  if (!found) throw new ProtocolError("InvalidFrame", "frame has no seq to rewrite");
  const encoded = encodeUint(seq);
  const out = new Uint8Array(frame.byteLength - (found.end - found.start) + encoded.byteLength);
  out.set(frame.subarray(0, found.start), 0);
  out.set(encoded, found.start);
  out.set(frame.subarray(found.end), found.start + encoded.byteLength);
  return out;
}
