import { decodeDagCbor, encodeDagCbor } from "./cbor";
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

/** Decodes and checks the shape of a signed commit block. Throws ProtocolError. */
export function decodeCommit(bytes: Uint8Array): SignedCommit {
  const value = decodeDagCbor(bytes);
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
  return { did: o.did, version: 3, data, rev: o.rev, prev, sig: o.sig };
}

/** The bytes a commit signature covers: the commit without `sig`, canonically encoded. */
export function unsignedCommitBytes(commit: SignedCommit): Uint8Array {
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
