import { concatBytes } from "./bytes";
import { decodeDagCbor, encodeDagCbor } from "./cbor";
import {
  assertValidCid,
  CID,
  cidV1String,
  DAG_CBOR_CODEC,
  RAW_CODEC,
  SHA2_256_CODE,
  verifyBlock,
} from "./cid";
import { ProtocolError } from "./errors";
import { MAX_CAR_BLOCKS, MAX_COMMIT_BLOCKS_BYTES } from "./limits";
import { sha256 } from "./sha256";

// CAR v1 as carried in `blocks`: varint-prefixed DAG-CBOR header `{version: 1, roots}`, then
// varint-prefixed sections of CID bytes + block bytes. Hostile input is bounded: every length
// is checked against what remains before anything is sliced (slices share the input buffer, so
// nothing is allocated per block), and the number of blocks is capped.

export type CarContents = {
  roots: CID[];
  /** Keyed by the CID's string form. Values are views into the input. */
  blocks: Map<string, Uint8Array>;
};

export type ReadCarOptions = { maxBlocks?: number; maxBytes?: number };

function readVarint(buf: Uint8Array, pos: number): [value: number, next: number] {
  let value = 0;
  let shift = 1;
  for (let i = 0; i < 8; i++) {
    const b = buf[pos + i];
    if (b === undefined) throw new ProtocolError("InvalidCar", "truncated varint");
    value += (b & 0x7f) * shift;
    if ((b & 0x80) === 0) {
      if (i > 0 && b === 0) throw new ProtocolError("InvalidCar", "non-minimal varint");
      return [value, pos + i + 1];
    }
    shift *= 128;
  }
  throw new ProtocolError("InvalidCar", "varint too long");
}

function encodeVarint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

// The header of a CAR with one root, as every commit's is: {roots: [root], version: 1} in
// canonical DAG-CBOR, the root a tag-42 link to a 36-byte CIDv1. Matched byte for byte (any other
// header goes through the general decoder), which saves a general decode per event.
const ONE_ROOT_PREFIX = Uint8Array.from([
  0xa2, 0x65, 0x72, 0x6f, 0x6f, 0x74, 0x73, 0x81, 0xd8, 0x2a, 0x58, 0x25, 0x00,
]);
const ONE_ROOT_SUFFIX = Uint8Array.from([0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x01]);
const ROOT_CID_BYTES = 36;
const ONE_ROOT_HEADER_BYTES = ONE_ROOT_PREFIX.length + ROOT_CID_BYTES + ONE_ROOT_SUFFIX.length;

function startsWith(bytes: Uint8Array, at: number, expected: Uint8Array): boolean {
  for (let i = 0; i < expected.length; i++) if (bytes[at + i] !== expected[i]) return false;
  return true;
}

function oneRootHeader(bytes: Uint8Array): CID[] | null {
  if (bytes.length !== ONE_ROOT_HEADER_BYTES || !startsWith(bytes, 0, ONE_ROOT_PREFIX)) return null;
  const suffixAt = ONE_ROOT_PREFIX.length + ROOT_CID_BYTES;
  if (!startsWith(bytes, suffixAt, ONE_ROOT_SUFFIX)) return null;
  try {
    return [CID.decode(bytes.subarray(ONE_ROOT_PREFIX.length, suffixAt))];
  } catch {
    return null;
  }
}

function parseHeader(bytes: Uint8Array): CID[] {
  const fast = oneRootHeader(bytes);
  if (fast) return fast;
  const header = decodeDagCbor(bytes);
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new ProtocolError("InvalidCar", "CAR header is not a map");
  }
  const { version, roots } = header as { version?: unknown; roots?: unknown };
  if (version !== 1)
    throw new ProtocolError("InvalidCar", `CAR version must be 1, got ${String(version)}`);
  if (!Array.isArray(roots)) throw new ProtocolError("InvalidCar", "CAR roots must be an array");
  return roots.map((r) => {
    const cid = CID.asCID(r);
    if (!cid) throw new ProtocolError("InvalidCar", "CAR root is not a CID");
    return cid;
  });
}

// A section of an atproto CAR starts with a 36-byte CIDv1 (dag-cbor or raw, sha2-256): its digest
// is compared with the block's hash in place; other sections take the general path below, which
// decides as before.
const SECTION_CID_BYTES = 36;

/** The CID's string key of a verified atproto section, or null for the general path. */
function atprotoSection(section: Uint8Array): string | null {
  if (
    section.length < SECTION_CID_BYTES ||
    section[0] !== 1 ||
    (section[1] !== DAG_CBOR_CODEC && section[1] !== RAW_CODEC) ||
    section[2] !== SHA2_256_CODE ||
    section[3] !== 32
  )
    return null;
  const digest = sha256(section.subarray(SECTION_CID_BYTES));
  for (let i = 0; i < 32; i++) {
    if (digest[i] !== section[4 + i]) {
      const cid = CID.decode(section.subarray(0, SECTION_CID_BYTES));
      throw new ProtocolError("CidMismatch", `block bytes do not hash to ${cid.toString()}`);
    }
  }
  // the four bytes checked above make these 36 bytes a valid CIDv1: its string is read directly
  return cidV1String(section.subarray(0, SECTION_CID_BYTES));
}

/** Reads a CAR v1 slice and verifies that every block hashes to its CID. */
export function readCar(bytes: Uint8Array, opts: ReadCarOptions = {}): CarContents {
  const maxBlocks = opts.maxBlocks ?? MAX_CAR_BLOCKS;
  const maxBytes = opts.maxBytes ?? MAX_COMMIT_BLOCKS_BYTES;
  if (bytes.byteLength > maxBytes) {
    throw new ProtocolError("CarTooLarge", `CAR of ${bytes.byteLength} bytes exceeds ${maxBytes}`);
  }
  const [headerLength, headerStart] = readVarint(bytes, 0);
  if (headerLength === 0 || headerStart + headerLength > bytes.length) {
    throw new ProtocolError("InvalidCar", "CAR header length out of range");
  }
  const roots = parseHeader(bytes.subarray(headerStart, headerStart + headerLength));
  const blocks = new Map<string, Uint8Array>();
  let pos = headerStart + headerLength;
  while (pos < bytes.length) {
    if (blocks.size >= maxBlocks)
      throw new ProtocolError("CarTooLarge", `more than ${maxBlocks} blocks`);
    const [sectionLength, sectionStart] = readVarint(bytes, pos);
    const sectionEnd = sectionStart + sectionLength;
    if (sectionLength === 0 || sectionEnd > bytes.length) {
      throw new ProtocolError("InvalidCar", "CAR section length out of range");
    }
    const section = bytes.subarray(sectionStart, sectionEnd);
    const key = atprotoSection(section);
    if (key !== null) {
      blocks.set(key, section.subarray(SECTION_CID_BYTES));
      pos = sectionEnd;
      continue;
    }
    let cid: CID;
    let block: Uint8Array;
    try {
      const [decoded, rest] = CID.decodeFirst(section);
      cid = decoded;
      block = rest;
    } catch (err) {
      throw new ProtocolError("InvalidCid", "CAR section does not start with a CID", {
        cause: err,
      });
    }
    assertValidCid(cid);
    verifyBlock(cid, block);
    blocks.set(cid.toString(), block);
    pos = sectionEnd;
  }
  return { roots, blocks };
}

/** Writes a CAR v1 slice (used to build test vectors and relay-made events). */
export function writeCar(roots: CID[], blocks: Iterable<[CID, Uint8Array]>): Uint8Array {
  const header = encodeDagCbor({ version: 1, roots });
  const parts: Uint8Array[] = [Uint8Array.from(encodeVarint(header.byteLength)), header];
  for (const [cid, block] of blocks) {
    parts.push(
      Uint8Array.from(encodeVarint(cid.bytes.byteLength + block.byteLength)),
      cid.bytes,
      block,
    );
  }
  return concatBytes(parts);
}
