import { ProtocolError } from "./errors";

// Shallow reading of CBOR by its length headers, for the few places that need one field of a
// frame without decoding it (the seq to rewrite, the DID to look up ahead): an item is skipped in
// O(its nested items), `blocks` in O(1). Nothing here checks that the bytes are strict DAG-CBOR:
// the strict decoder (cbor.ts) stays the judge of every frame.

export interface Head {
  major: number;
  /** Integer value, or length/count for strings, arrays and maps. */
  value: number;
  headerLength: number;
}

export function readHead(buf: Uint8Array, pos: number): Head {
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
export function skipItem(buf: Uint8Array, pos: number, depth: number): number {
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

/** Whether the CBOR item at `pos` is the text string `key` (ASCII), as encoded in `encoded`. */
export function isTextKey(buf: Uint8Array, pos: number, encoded: Uint8Array): boolean {
  for (let i = 0; i < encoded.length; i++) if (buf[pos + i] !== encoded[i]) return false;
  return true;
}

/** A short ASCII text key as CBOR (head and bytes), for isTextKey. */
export function textKey(key: string): Uint8Array {
  if (key.length >= 24) throw new Error("textKey is for keys under 24 characters");
  return Uint8Array.from([0x60 | key.length, ...[...key].map((c) => c.charCodeAt(0))]);
}
