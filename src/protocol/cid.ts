import { sha256 } from "@noble/hashes/sha2.js";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { ProtocolError } from "./errors";

// atproto CIDs are CIDv1 with a sha2-256 multihash over dag-cbor (records, commits, MST nodes)
// or raw (blobs). Hashing is done with @noble/hashes, synchronously, so the same code runs in
// Node, in workerd and in benchmarks.

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

/** Checks that a CID is one atproto allows (v1, sha2-256, dag-cbor or raw). */
export function assertValidCid(cid: CID): CID {
  return assertAtprotoCid(cid);
}

function sha256Cid(codec: number, bytes: Uint8Array): CID {
  return CID.createV1(codec, Digest.create(SHA2_256_CODE, sha256(bytes)));
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
