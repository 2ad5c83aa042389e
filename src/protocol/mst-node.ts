import { decodeDagCbor, encodeDagCbor } from "./cbor";
import { NOT_FAST, Reader } from "./cbor-layout";
import { CID } from "./cid";
import { ProtocolError } from "./errors";

// MST nodes (`{l, e: [{k, p, v, t}]}`) are most of what a sync 1.1 proof decodes and all of what
// rebuilding a previous root encodes: the general DAG-CBOR codec (cborg plus the strict token
// checks of cbor.ts) costs ~2/3 of an MST proof check (docs/benchmarks.md). A node has one
// canonical encoding, so both directions are written out by hand here for that one layout:
// - decoding takes the fast path only for bytes laid out exactly as the canonical encoding of a
//   node (minimal heads, the keys and only them in canonical order, CIDs as tag 42 over 0x00 and
//   a CID); anything else goes through the general strict decoder, which accepts or rejects it
//   as before. The fast path therefore accepts nothing the general one would reject, and yields
//   the same values.
// - encoding writes the same bytes as `encodeDagCbor` of the node (test/core/mst-node.test.ts
//   compares both on every node of the captured commits and on generated trees).

export type NodeEntry = { k: Uint8Array; p: number; v: CID; t: CID | null };
export type MstNode = { l: CID | null; e: NodeEntry[] };

function invalid(message: string): ProtocolError {
  return new ProtocolError("InvalidMstProof", message);
}

const NULL = 0xf6;
const TAG_42 = [0xd8, 0x2a] as const;
// text keys "e", "l", "k", "p", "t", "v" as one-byte strings (major 3, length 1)
const KEY_E = 0x65;
const KEY_L = 0x6c;
const KEY_K = 0x6b;
const KEY_P = 0x70;
const KEY_T = 0x74;
const KEY_V = 0x76;
const MAX_FAST_ENTRIES = 0xffff;

function decodeCanonicalNode(bytes: Uint8Array): MstNode {
  const r = new Reader(bytes);
  if (r.byte() !== 0xa2) throw NOT_FAST;
  r.key(KEY_E);
  const count = r.head(4);
  if (count > MAX_FAST_ENTRIES) throw NOT_FAST;
  const e: NodeEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (r.byte() !== 0xa4) throw NOT_FAST;
    r.key(KEY_K);
    const k = r.bytesOf(r.head(2));
    r.key(KEY_P);
    const p = r.head(0);
    r.key(KEY_T);
    const t = r.cidOrNull();
    r.key(KEY_V);
    const v = r.cid();
    e.push({ k, p, v, t });
  }
  r.key(KEY_L);
  const l = r.cidOrNull();
  if (r.pos !== bytes.length) throw NOT_FAST;
  return { l, e };
}

/** The general path: any strict DAG-CBOR, then the node's shape. */
function decodeGeneralNode(bytes: Uint8Array): MstNode {
  const node = decodeDagCbor(bytes) as { l?: unknown; e?: unknown };
  if (typeof node !== "object" || node === null || !Array.isArray(node.e))
    throw invalid("not an MST node");
  const l = node.l === null ? null : CID.asCID(node.l);
  if (node.l !== null && !l) throw invalid("MST node l is not a link");
  const e = node.e.map((raw) => {
    const entry = raw as { k?: unknown; p?: unknown; v?: unknown; t?: unknown };
    const v = CID.asCID(entry.v);
    const t = entry.t === null ? null : CID.asCID(entry.t);
    if (
      !(entry.k instanceof Uint8Array) ||
      typeof entry.p !== "number" ||
      !v ||
      (entry.t !== null && !t)
    ) {
      throw invalid("malformed MST entry");
    }
    return { k: entry.k, p: entry.p, v, t };
  });
  return { l, e };
}

/** Decodes an MST node block. Throws ProtocolError (as the general decoder would). */
export function decodeMstNode(bytes: Uint8Array): MstNode {
  try {
    return decodeCanonicalNode(bytes);
  } catch (err) {
    if (err !== NOT_FAST) throw err;
  }
  return decodeGeneralNode(bytes);
}

function headLength(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

function cidLength(cid: CID | null): number {
  if (cid === null) return 1;
  const n = cid.bytes.byteLength + 1;
  return 2 + headLength(n) + n;
}

class Writer {
  pos = 0;
  constructor(readonly out: Uint8Array) {}

  head(major: number, n: number): void {
    const m = major << 5;
    const out = this.out;
    if (n < 24) out[this.pos++] = m | n;
    else if (n < 0x100) {
      out[this.pos++] = m | 24;
      out[this.pos++] = n;
    } else if (n < 0x10000) {
      out[this.pos++] = m | 25;
      out[this.pos++] = n >> 8;
      out[this.pos++] = n & 0xff;
    } else {
      out[this.pos++] = m | 26;
      out[this.pos++] = (n >>> 24) & 0xff;
      out[this.pos++] = (n >> 16) & 0xff;
      out[this.pos++] = (n >> 8) & 0xff;
      out[this.pos++] = n & 0xff;
    }
  }

  key(code: number): void {
    this.out[this.pos++] = 0x61;
    this.out[this.pos++] = code;
  }

  raw(bytes: Uint8Array): void {
    this.out.set(bytes, this.pos);
    this.pos += bytes.byteLength;
  }

  cidOrNull(cid: CID | null): void {
    if (cid === null) {
      this.out[this.pos++] = NULL;
      return;
    }
    this.out[this.pos++] = TAG_42[0];
    this.out[this.pos++] = TAG_42[1];
    this.head(2, cid.bytes.byteLength + 1);
    this.out[this.pos++] = 0x00;
    this.raw(cid.bytes);
  }
}

/** The canonical DAG-CBOR encoding of a node: the bytes `encodeDagCbor(node)` gives. */
export function encodeMstNode(node: MstNode): Uint8Array {
  const { l, e } = node;
  // the general encoder handles what the hand-written layout does not (never in practice)
  if (e.length > MAX_FAST_ENTRIES) return encodeDagCbor(node);
  let size = 1 + 2 + headLength(e.length) + 2 + cidLength(l);
  for (const entry of e) {
    if (!Number.isSafeInteger(entry.p) || entry.p < 0 || entry.p > 0xffffffff)
      return encodeDagCbor(node);
    size +=
      1 +
      2 +
      headLength(entry.k.byteLength) +
      entry.k.byteLength +
      2 +
      headLength(entry.p) +
      2 +
      cidLength(entry.t) +
      2 +
      cidLength(entry.v);
  }
  const w = new Writer(new Uint8Array(size));
  w.out[w.pos++] = 0xa2;
  w.key(KEY_E);
  w.head(4, e.length);
  for (const entry of e) {
    w.out[w.pos++] = 0xa4;
    w.key(KEY_K);
    w.head(2, entry.k.byteLength);
    w.raw(entry.k);
    w.key(KEY_P);
    w.head(0, entry.p);
    w.key(KEY_T);
    w.cidOrNull(entry.t);
    w.key(KEY_V);
    w.cidOrNull(entry.v);
  }
  w.key(KEY_L);
  w.cidOrNull(l);
  return w.out;
}
