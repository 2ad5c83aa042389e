import { NOT_FAST, Reader } from "./cbor-layout";
import type { CID } from "./cid";
import type { CommitBody, RepoOp } from "./frame";

// Nearly every frame a relay reads is a `#commit` laid out exactly as the canonical encoding of
// the lexicon's fields. Such a frame is read here with the layout reader (cbor-layout.ts) instead
// of the general strict decoder; a frame off that layout in any way (another field, a non-ASCII
// string, a non-minimal head, a null where a link must be, a seq beyond 32 bits...) returns null,
// and decodeFrame decodes it the general way, which accepts or rejects it as before. The body
// given is the one the general path gives (test/core/commit-frame.test.ts compares them).

// {t: "#commit", op: 1}: canonical order puts the 1-byte key first
const COMMIT_HEADER = Uint8Array.from([
  0xa2, 0x61, 0x74, 0x67, 0x23, 0x63, 0x6f, 0x6d, 0x6d, 0x69, 0x74, 0x62, 0x6f, 0x70, 0x01,
]);

const FALSE = 0xf4;
const TRUE = 0xf5;
const NULL = 0xf6;

function key(r: Reader, name: string): void {
  if (r.ascii() !== name) throw NOT_FAST;
}

function bool(r: Reader): boolean {
  const b = r.byte();
  if (b === TRUE) return true;
  if (b === FALSE) return false;
  throw NOT_FAST;
}

function nextIsKey(r: Reader, name: string): boolean {
  // a text head of the key's length followed by its bytes
  const bytes = r.bytes;
  if (bytes[r.pos] !== (0x60 | name.length)) return false;
  for (let i = 0; i < name.length; i++)
    if (bytes[r.pos + 1 + i] !== name.charCodeAt(i)) return false;
  return true;
}

function readOp(r: Reader): RepoOp {
  const size = r.byte();
  if (size !== 0xa3 && size !== 0xa4) throw NOT_FAST;
  key(r, "cid");
  const cid = r.cidOrNull();
  key(r, "path");
  const path = r.ascii();
  let prev: CID | undefined;
  if (size === 0xa4) {
    key(r, "prev");
    prev = r.cid();
  }
  key(r, "action");
  const action = r.ascii();
  if (action !== "create" && action !== "update" && action !== "delete") throw NOT_FAST;
  const op: RepoOp = { action, path, cid };
  if (prev) op.prev = prev;
  return op;
}

/** The body of a canonically laid out `#commit` frame, or null (decode it the general way). */
export function decodeCanonicalCommitFrame(frame: Uint8Array): CommitBody | null {
  for (let i = 0; i < COMMIT_HEADER.length; i++) if (frame[i] !== COMMIT_HEADER[i]) return null;
  try {
    const r = new Reader(frame);
    r.pos = COMMIT_HEADER.length;
    const size = r.byte();
    if (size !== 0xab && size !== 0xac) return null;
    key(r, "ops");
    const opCount = r.head(4);
    const ops: RepoOp[] = [];
    for (let i = 0; i < opCount; i++) ops.push(readOp(r));
    key(r, "rev");
    const rev = r.ascii();
    key(r, "seq");
    const seq = r.head(0);
    key(r, "repo");
    const repo = r.ascii();
    key(r, "time");
    const time = r.ascii();
    key(r, "blobs");
    const blobCount = r.head(4);
    const blobs: CID[] = [];
    for (let i = 0; i < blobCount; i++) blobs.push(r.cid());
    key(r, "since");
    let since: string | null = null;
    if (r.bytes[r.pos] === NULL) r.pos++;
    else since = r.ascii();
    key(r, "blocks");
    const blocks = r.bytesOf(r.head(2));
    key(r, "commit");
    const commit = r.cid();
    key(r, "rebase");
    const rebase = bool(r);
    key(r, "tooBig");
    const tooBig = bool(r);
    let prevData: CID | undefined;
    if (size === 0xac) {
      if (!nextIsKey(r, "prevData")) return null;
      key(r, "prevData");
      prevData = r.cid();
    }
    if (r.pos !== frame.length) return null;
    const body: CommitBody = {
      seq,
      rebase,
      tooBig,
      repo,
      commit,
      rev,
      since,
      blocks,
      ops,
      blobs,
      time,
    };
    if (prevData) body.prevData = prevData;
    return body;
  } catch (err) {
    if (err === NOT_FAST) return null;
    throw err;
  }
}
