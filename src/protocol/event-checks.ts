import { type CarContents, readCar } from "./car";
import { type CID, cidKey } from "./cid";
import { decodeCommit, type SignedCommit } from "./commit";
import { ProtocolError } from "./errors";
import type { AccountBody, CommitBody, IdentityBody, SyncBody } from "./frame";
import {
  FUTURE_REV_TOLERANCE_MS,
  MAX_ACCOUNT_STATUS_CHARS,
  MAX_COMMIT_BLOCKS_BYTES,
  MAX_COMMIT_OPS,
  MAX_SYNC_BLOCKS_BYTES,
} from "./limits";
import { checkCommitOps } from "./mst";
import {
  isValidDatetime,
  isValidDid,
  isValidHandle,
  isValidRepoPath,
  isValidTid,
  tidTimestampMs,
} from "./syntax";

export type CheckedCommit = {
  did: string;
  rev: string;
  commitCid: CID;
  commit: SignedCommit;
  blocks: CarContents;
};

function checkDidAndRev(did: string, rev: string, nowMs: number): void {
  if (!isValidDid(did))
    throw new ProtocolError("InvalidSyntax", `not a valid DID: ${did.slice(0, 100)}`);
  if (!isValidTid(rev))
    throw new ProtocolError("InvalidSyntax", `rev is not a valid TID: ${rev.slice(0, 20)}`);
  if (tidTimestampMs(rev) > nowMs + FUTURE_REV_TOLERANCE_MS) {
    throw new ProtocolError(
      "FutureRev",
      `rev ${rev} lies more than ${FUTURE_REV_TOLERANCE_MS / 60000} minutes in the future`,
    );
  }
}

function checkTime(time: string): void {
  if (!isValidDatetime(time))
    throw new ProtocolError("InvalidSyntax", `time is not a datetime: ${time.slice(0, 70)}`);
}

function readSignedCommit(
  blocks: Uint8Array,
  maxBytes: number,
  did: string,
  rev: string,
  expectedRoot: CID | null,
): CheckedCommit {
  const car = readCar(blocks, { maxBytes });
  const root = car.roots[0];
  if (car.roots.length !== 1 || !root)
    throw new ProtocolError("InvalidCar", "blocks must have exactly one root");
  if (expectedRoot && !root.equals(expectedRoot)) {
    throw new ProtocolError(
      "InvalidCommit",
      `CAR root ${root} is not the event's commit ${expectedRoot}`,
    );
  }
  const commitBytes = car.blocks.get(cidKey(root));
  if (!commitBytes) throw new ProtocolError("MissingBlock", "the commit block is not in blocks");
  const commit = decodeCommit(commitBytes);
  if (commit.did !== did)
    throw new ProtocolError("InvalidCommit", `commit is for ${commit.did}, event for ${did}`);
  if (commit.rev !== rev)
    throw new ProtocolError(
      "InvalidCommit",
      `commit rev ${commit.rev} differs from event rev ${rev}`,
    );
  return { did, rev, commitCid: root, commit, blocks: car };
}

/**
 * Checks a `#commit` event as far as it can be checked with no state and no network:
 * - `repo` is a DID, `rev` a TID not more than FUTURE_REV_TOLERANCE_MS ahead of `nowMs`,
 *   `time` an atproto datetime;
 * - `tooBig` and `rebase` are false (both are deprecated; sync 1.1 relays drop them);
 * - `blocks` within MAX_COMMIT_BLOCKS_BYTES and `ops` within MAX_COMMIT_OPS;
 * - `blocks` is a CAR whose every block hashes to its CID, whose one root is `commit`,
 *   and which holds the signed commit, whose `did` and `rev` match the event;
 * - every op names a valid `collection/rkey` path, and every create/update op's record block
 *   is present (sync 1.1: a relay must be able to check the ops against the tree);
 * - when the commit carries `prevData` (sync 1.1), the MST proof in `blocks` shows every op
 *   in the new tree, and inverting the ops yields `prevData` (mst.ts). Commits without
 *   `prevData` (PDS versions before sync 1.1) send no proof and are not held to one.
 * It does not check the signature (needs the DID document), rev ordering, `since`/`prevData`
 * continuity or whether the sending host holds the account: those need state or the network
 * and are done by the ingester, which calls this first because it is the cheap part.
 */
export function checkCommitEvent(body: CommitBody, nowMs: number): CheckedCommit {
  checkDidAndRev(body.repo, body.rev, nowMs);
  checkTime(body.time);
  if (body.tooBig) throw new ProtocolError("TooBig", "tooBig commits are not relayed");
  if (body.rebase) throw new ProtocolError("InvalidCommit", "rebase commits are not relayed");
  if (body.since !== null && !isValidTid(body.since))
    throw new ProtocolError("InvalidSyntax", "since is not a valid TID");
  if (body.blocks.byteLength > MAX_COMMIT_BLOCKS_BYTES) {
    throw new ProtocolError(
      "TooBig",
      `blocks of ${body.blocks.byteLength} bytes exceed ${MAX_COMMIT_BLOCKS_BYTES}`,
    );
  }
  if (body.ops.length > MAX_COMMIT_OPS)
    throw new ProtocolError("TooBig", `${body.ops.length} ops exceed ${MAX_COMMIT_OPS}`);
  const checked = readSignedCommit(
    body.blocks,
    MAX_COMMIT_BLOCKS_BYTES,
    body.repo,
    body.rev,
    body.commit,
  );
  for (const op of body.ops) {
    if (!isValidRepoPath(op.path))
      throw new ProtocolError("InvalidSyntax", `invalid op path ${op.path.slice(0, 100)}`);
    if (op.action === "delete") {
      if (op.cid !== null)
        throw new ProtocolError("InvalidCommit", "a delete op must have a null cid");
      continue;
    }
    if (!op.cid) throw new ProtocolError("InvalidCommit", `${op.action} op without a cid`);
    if (!checked.blocks.blocks.has(cidKey(op.cid))) {
      throw new ProtocolError(
        "MissingBlock",
        `record block ${op.cid} of ${op.path} is not in blocks`,
      );
    }
  }
  if (body.prevData) {
    const proof = checkCommitOps(checked.commit.data, body.ops, checked.blocks.blocks);
    if (!proof.ok) throw new ProtocolError("InvalidMstProof", proof.reason);
    if (proof.previousRoot && !proof.previousRoot.equals(body.prevData)) {
      throw new ProtocolError(
        "InvalidMstProof",
        `the ops invert to ${proof.previousRoot}, not to prevData ${body.prevData}`,
      );
    }
  }
  return checked;
}

/**
 * Checks a `#sync` event with no state and no network: `did`, `rev` and `time` as for commits, blocks
 * within MAX_SYNC_BLOCKS_BYTES and a CAR whose one root is the signed commit of this did/rev.
 * The signature is checked by the ingester against the DID document.
 */
export function checkSyncEvent(body: SyncBody, nowMs: number): CheckedCommit {
  checkDidAndRev(body.did, body.rev, nowMs);
  checkTime(body.time);
  if (body.blocks.byteLength > MAX_SYNC_BLOCKS_BYTES) {
    throw new ProtocolError(
      "TooBig",
      `sync blocks of ${body.blocks.byteLength} bytes exceed ${MAX_SYNC_BLOCKS_BYTES}`,
    );
  }
  return readSignedCommit(body.blocks, MAX_SYNC_BLOCKS_BYTES, body.did, body.rev, null);
}

function checkDid(did: string): void {
  if (!isValidDid(did))
    throw new ProtocolError("InvalidSyntax", `not a valid DID: ${did.slice(0, 100)}`);
}

/**
 * Checks the fields of an `#identity` event against the lexicon's formats: `did` a DID, `time`
 * a datetime, `handle` (optional) a handle. Whether the sending host may speak for the DID needs
 * its document and is the ingester's check.
 */
export function checkIdentityEvent(body: IdentityBody): void {
  checkDid(body.did);
  checkTime(body.time);
  if (body.handle !== undefined && !isValidHandle(body.handle))
    throw new ProtocolError("InvalidSyntax", `not a valid handle: ${body.handle.slice(0, 100)}`);
}

/**
 * Checks the fields of an `#account` event: `did` a DID, `time` a datetime, `status` (optional;
 * the lexicon's known values are an open set) a short name of letters, digits, `-` and `_`.
 */
export function checkAccountEvent(body: AccountBody): void {
  checkDid(body.did);
  checkTime(body.time);
  const status = body.status;
  if (
    status !== undefined &&
    (status.length > MAX_ACCOUNT_STATUS_CHARS || !/^[a-zA-Z][a-zA-Z0-9_-]*$/.test(status))
  )
    throw new ProtocolError("InvalidSyntax", `not a valid account status: ${status.slice(0, 70)}`);
}
