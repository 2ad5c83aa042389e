import { decodeDagCbor, encodeDagCbor } from "./cbor";
import { NOT_FAST, Reader } from "./cbor-layout";
import { CID } from "./cid";
import type { PublicKey } from "./did-key";
import { ProtocolError } from "./errors";
import { verifySignature, verifySignatureAsync } from "./signature";
import { isValidDid, isValidTid } from "./syntax";

// A repo commit (atproto repository spec, version 3): `{did, version, data, rev, prev, sig}`.
// The signature covers the DAG-CBOR encoding of the same object without `sig`.

export type SignedCommit = {
  did: string;
  version: 3;
  data: CID;
  rev: string;
  prev: CID | null;
  sig: Uint8Array;
};

function invalid(message: string): ProtocolError {
  return new ProtocolError("InvalidCommit", message);
}

const textKey = (r: Reader, key: string) => {
  if (r.ascii() !== key) throw NOT_FAST;
};

/**
 * A commit laid out as its canonical encoding (keys did, rev, sig, data, prev, version; ASCII
 * strings), read without the general decoder; null for anything else, which the general decoder
 * then accepts or rejects as before. The values are checked below either way.
 */
function decodeCanonicalCommit(bytes: Uint8Array): Record<string, unknown> | null {
  try {
    const r = new Reader(bytes);
    if (r.byte() !== 0xa6) return null;
    textKey(r, "did");
    const did = r.ascii();
    textKey(r, "rev");
    const rev = r.ascii();
    textKey(r, "sig");
    const sig = r.bytesOf(r.head(2));
    textKey(r, "data");
    const data = r.cid();
    textKey(r, "prev");
    const prev = r.cidOrNull();
    textKey(r, "version");
    const version = r.head(0);
    if (r.pos !== bytes.length) return null;
    return { did, rev, sig, data, prev, version };
  } catch (err) {
    if (err === NOT_FAST) return null;
    throw err;
  }
}

/** Decodes and checks the shape of a signed commit block. Throws ProtocolError. */
export function decodeCommit(bytes: Uint8Array): SignedCommit {
  const value = decodeCanonicalCommit(bytes) ?? decodeDagCbor(bytes);
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw invalid("commit is not a map");
  const o = value as Record<string, unknown>;
  if (o.version !== 3) throw invalid(`commit version must be 3, got ${String(o.version)}`);
  if (typeof o.did !== "string" || !isValidDid(o.did))
    throw invalid("commit did is not a valid DID");
  if (typeof o.rev !== "string" || !isValidTid(o.rev))
    throw invalid("commit rev is not a valid TID");
  const data = CID.asCID(o.data);
  if (!data) throw invalid("commit data must be a CID link");
  let prev: CID | null = null;
  if (o.prev !== null && o.prev !== undefined) {
    prev = CID.asCID(o.prev);
    if (!prev) throw invalid("commit prev must be a CID link or null");
  }
  if (!(o.sig instanceof Uint8Array)) throw invalid("commit sig must be bytes");
  for (const key of Object.keys(o)) {
    if (!["did", "version", "data", "rev", "prev", "sig"].includes(key))
      throw invalid(`unexpected commit field ${key}`);
  }
  // frozen: the signed bytes are kept for this object, so it must keep meaning those bytes
  const commit: SignedCommit = Object.freeze({
    did: o.did,
    version: 3,
    data,
    rev: o.rev,
    prev,
    sig: o.sig,
  });
  const unsigned = unsignedBytesOf(bytes, o.prev === undefined);
  if (unsigned) unsignedBytes.set(commit, unsigned);
  return commit;
}

// The bytes a signature covers are the commit's own block with its `sig` entry cut out: the block
// passed the strict decoder, so it is the one canonical encoding of its values, and the map
// without `sig` encodes as the same bytes minus that entry (a 6-entry map's head 0xa6 becomes
// 0xa5). Cutting saves re-encoding the commit for every signature check; a commit decoded here
// keeps them (per object, so a copy with other fields is encoded afresh).
const unsignedBytes = new WeakMap<SignedCommit, Uint8Array>();

const SIG_KEY = [0x63, 0x73, 0x69, 0x67]; // text(3) "sig"

/** Length of the head and content of the text or byte string at `pos` (minimal heads only). */
function stringItemLength(bytes: Uint8Array, pos: number): number {
  const info = (bytes[pos] as number) & 0x1f;
  if (info < 24) return 1 + info;
  if (info === 24) return 2 + (bytes[pos + 1] as number);
  if (info === 25) return 3 + (((bytes[pos + 1] as number) << 8) | (bytes[pos + 2] as number));
  return -1;
}

/**
 * The block without its `sig` entry, or null when the layout is not the expected one (then the
 * unsigned commit is encoded). In canonical order the keys are did, rev, sig, data, prev,
 * version; a commit without `prev` is signed over `prev: null`, so it is encoded instead.
 */
function unsignedBytesOf(block: Uint8Array, prevAbsent: boolean): Uint8Array | null {
  if (prevAbsent || block[0] !== 0xa6) return null;
  let pos = 1;
  for (const key of ["did", "rev"]) {
    if (block[pos] !== 0x63 || String.fromCharCode(...block.subarray(pos + 1, pos + 4)) !== key)
      return null;
    const length = stringItemLength(block, pos + 4);
    if (length < 0) return null;
    pos += 4 + length;
  }
  for (let i = 0; i < SIG_KEY.length; i++) if (block[pos + i] !== SIG_KEY[i]) return null;
  const sigLength = stringItemLength(block, pos + 4);
  if (sigLength < 0) return null;
  const sigEnd = pos + 4 + sigLength;
  if (sigEnd > block.length) return null;
  const out = new Uint8Array(block.length - (sigEnd - pos));
  out.set(block.subarray(0, pos), 0);
  out[0] = 0xa5;
  out.set(block.subarray(sigEnd), pos);
  return out;
}

/** The bytes a commit signature covers: the commit without `sig`, canonically encoded. */
export function unsignedCommitBytes(commit: SignedCommit): Uint8Array {
  const cut = unsignedBytes.get(commit);
  if (cut) return cut;
  return encodeDagCbor({
    did: commit.did,
    version: commit.version,
    data: commit.data,
    rev: commit.rev,
    prev: commit.prev,
  });
}

/** Synchronous check of the commit's signature (P-256 in JavaScript: slower than the async one). */
export function verifyCommitSignature(commit: SignedCommit, key: PublicKey): boolean {
  return verifySignature(key, unsignedCommitBytes(commit), commit.sig);
}

/** The commit's signature, checked with the fastest backend for the key's curve (signature.ts). */
export function verifyCommitSignatureAsync(commit: SignedCommit, key: PublicKey): Promise<boolean> {
  return verifySignatureAsync(key, unsignedCommitBytes(commit), commit.sig);
}
