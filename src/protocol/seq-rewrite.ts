import { isTextKey, readHead, skipItem, textKey } from "./cbor-scan";
import { ProtocolError } from "./errors";

// The relay gives every event its own seq, and this is the only change it makes to a frame.
// Decoding and re-encoding the body would copy and re-hash nothing, but it would walk every
// block and op; instead this scans the header and the top level of the body map by their CBOR
// length headers (skipping `blocks` in O(1)), finds the `seq` value and splices in the new
// integer. Map key order depends on keys only, so the result is still canonical DAG-CBOR.

const SEQ_KEY = textKey("seq");

/** Locates the byte range of the body's top-level `seq` value, or null if there is none. */
function findSeqValue(frame: Uint8Array): { start: number; end: number; value: number } | null {
  const bodyStart = skipItem(frame, 0, 0);
  const map = readHead(frame, bodyStart);
  if (map.major !== 5) throw new ProtocolError("InvalidFrame", "frame body is not a map");
  let pos = bodyStart + map.headerLength;
  for (let i = 0; i < map.value; i++) {
    const keyStart = pos;
    pos = skipItem(frame, pos, 1);
    if (pos - keyStart === 4 && isTextKey(frame, keyStart, SEQ_KEY)) {
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
