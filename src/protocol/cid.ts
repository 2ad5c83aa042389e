import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { ProtocolError } from "./errors";
import { sha256 } from "./sha256";

// atproto CIDs are CIDv1 with a sha2-256 multihash over dag-cbor (records, commits, MST nodes)
// or raw (blobs). Hashing is synchronous (sha256.ts), so the same code runs in Node, in workerd,
// in browsers and in benchmarks.

export const DAG_CBOR_CODEC = 0x71;
export const RAW_CODEC = 0x55;
export const SHA2_256_CODE = 0x12;

export { CID };

function assertAtprotoCid(cid: CID): CID {
  if (cid.version !== 1) throw new ProtocolError("InvalidCid", "CID must be version 1");
  if (cid.code !== DAG_CBOR_CODEC && cid.code !== RAW_CODEC) {
    throw new ProtocolError("InvalidCid", `unsupported CID codec 0x${cid.code.toString(16)}`);
  }
  if (cid.multihash.code !== SHA2_256_CODE || cid.multihash.size !== 32) {
    throw new ProtocolError("InvalidCid", "CID must use a 32-byte sha2-256 multihash");
  }
  return cid;
}

/** Parses a CID from its binary form (as found in CAR sections). */
export function parseCidBytes(bytes: Uint8Array): CID {
  let cid: CID;
  try {
    cid = CID.decode(bytes);
  } catch (err) {
    throw new ProtocolError("InvalidCid", "not a valid CID", { cause: err });
  }
  return assertAtprotoCid(cid);
}

/** Parses a CID from its string form (base32 `b...`). */
export function parseCidString(text: string): CID {
  let cid: CID;
  try {
    cid = CID.parse(text);
  } catch (err) {
    throw new ProtocolError("InvalidCid", `not a valid CID: ${text.slice(0, 80)}`, { cause: err });
  }
  return assertAtprotoCid(cid);
}

// A CIDv1's string form is "b" and the base32 (RFC 4648, lowercase, unpadded) of its bytes.
// multiformats' `toString` gives the same string but builds it with a generic encoder and keeps it
// in a per-object cache (a WeakMap insert): a commit's checks key every block and MST node by it,
// for CIDs each seen once, and that cost ~10 % of them (docs/benchmarks.md).
const BASE32_CODES = Uint16Array.from("abcdefghijklmnopqrstuvwxyz234567", (c) => c.charCodeAt(0));
const MULTIBASE_BASE32 = 0x62; // "b"
/** The characters of one string being built (reused: appending one at a time builds a rope). */
let chars = new Uint16Array(64);

/** The string form of the CIDv1 whose binary form is `bytes` (not checked: see `cidKey`). */
export function cidV1String(bytes: Uint8Array): string {
  const length = 2 + Math.ceil((bytes.length * 8) / 5);
  if (chars.length < length) chars = new Uint16Array(length);
  let n = 0;
  chars[n++] = MULTIBASE_BASE32;
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < bytes.length; i++) {
    buffer = ((buffer << 8) | (bytes[i] as number)) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      chars[n++] = BASE32_CODES[(buffer >>> bits) & 31] as number;
    }
  }
  if (bits > 0) chars[n++] = BASE32_CODES[(buffer << (5 - bits)) & 31] as number;
  return String.fromCharCode.apply(null, chars.subarray(0, n) as unknown as number[]);
}

/** `cid.toString()`, computed faster for the CIDv1 atproto uses (the key of a block map). */
export function cidKey(cid: CID): string {
  return cid.version === 1 ? cidV1String(cid.bytes) : cid.toString();
}

/** Checks that a CID is one atproto allows (v1, sha2-256, dag-cbor or raw). */
export function assertValidCid(cid: CID): CID {
  return assertAtprotoCid(cid);
}

const ATPROTO_CID_BYTES = 36;
const DIGEST_AT = 4;

function isAtprotoCidPrefix(bytes: Uint8Array): boolean {
  return (
    bytes[0] === 1 &&
    (bytes[1] === DAG_CBOR_CODEC || bytes[1] === RAW_CODEC) &&
    bytes[2] === SHA2_256_CODE &&
    bytes[3] === 32
  );
}

/** A CID over `bytes` (a 36-byte atproto CIDv1, checked by the caller), sharing them. */
function atprotoCidOver(bytes: Uint8Array): CID {
  const multihash = new Digest.Digest(
    SHA2_256_CODE,
    32,
    bytes.subarray(DIGEST_AT),
    bytes.subarray(DIGEST_AT - 2),
  );
  return new CID(1, bytes[1] as number, multihash, bytes);
}

/**
 * `CID.decode` for bytes that must be exactly one CID. The 36-byte CIDv1 atproto uses (one-byte
 * varints: version 1, dag-cbor or raw, sha2-256, 32 bytes) is built directly over the input,
 * skipping multiformats' varint parsing and its copy of the bytes; any other goes to `CID.decode`
 * (which throws on anything that is not a CID).
 */
export function decodeCid(bytes: Uint8Array): CID {
  if (bytes.length === ATPROTO_CID_BYTES && isAtprotoCidPrefix(bytes)) {
    // a Buffer (Node) is viewed as a plain Uint8Array, as multiformats does
    const plain =
      bytes.constructor === Uint8Array
        ? bytes
        : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return atprotoCidOver(plain);
  }
  return CID.decode(bytes);
}

function sha256Cid(codec: number, bytes: Uint8Array): CID {
  const cid = new Uint8Array(ATPROTO_CID_BYTES);
  cid[0] = 1;
  cid[1] = codec;
  cid[2] = SHA2_256_CODE;
  cid[3] = 32;
  cid.set(sha256(bytes), DIGEST_AT);
  return atprotoCidOver(cid);
}

export function cidForDagCbor(bytes: Uint8Array): CID {
  return sha256Cid(DAG_CBOR_CODEC, bytes);
}

export function cidForRaw(bytes: Uint8Array): CID {
  return sha256Cid(RAW_CODEC, bytes);
}

/** True when `bytes` hash to `cid` (sha2-256). Throws on a CID atproto does not allow. */
export function blockMatchesCid(cid: CID, bytes: Uint8Array): boolean {
  assertAtprotoCid(cid);
  const digest = sha256(bytes);
  const expected = cid.multihash.digest;
  if (expected.length !== digest.length) return false;
  for (let i = 0; i < digest.length; i++) if (digest[i] !== expected[i]) return false;
  return true;
}

/** Throws CidMismatch unless `bytes` hash to `cid`. */
export function verifyBlock(cid: CID, bytes: Uint8Array): void {
  if (!blockMatchesCid(cid, bytes)) {
    throw new ProtocolError("CidMismatch", `block bytes do not hash to ${cid.toString()}`);
  }
}
