import { cborEncode } from "@atproto/common";
import type { Keypair } from "@atproto/crypto";
import {
  blocksToCarFile,
  MemoryBlockstore,
  type RecordWriteOp,
  Repo,
  WriteOpAction,
} from "@atproto/repo";

// Real #commit frames made by the reference implementation: a repo built with @atproto/repo,
// commits signed by an @atproto/crypto keypair, blocks written by its CAR writer and the frame
// encoded by its CBOR encoder, as a reference PDS emits them.

export type ReferenceCommit = { frame: Uint8Array; did: string; rev: string; seq: number };

const S32 = "234567abcdefghijklmnopqrstuvwxyz";

function rkey(n: number): string {
  let v = BigInt(Date.UTC(2024, 0, 1) * 1000 + n) * 1024n;
  let out = "";
  for (let i = 0; i < 13; i++) {
    out = S32[Number(v % 32n)] + out;
    v /= 32n;
  }
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

/** Builds `count` commits of `opsPerCommit` creates each for one account. */
export async function referenceCommits(
  did: string,
  keypair: Keypair,
  count: number,
  opsPerCommit = 1,
  firstSeq = 1,
): Promise<ReferenceCommit[]> {
  const storage = new MemoryBlockstore();
  let repo = await Repo.create(storage, did, keypair);
  const out: ReferenceCommit[] = [];
  let n = 0;
  for (let i = 0; i < count; i++) {
    const writes: RecordWriteOp[] = [];
    for (let j = 0; j < opsPerCommit; j++) {
      n++;
      writes.push({
        action: WriteOpAction.Create,
        collection: "app.bsky.feed.post",
        rkey: rkey(n),
        record: {
          $type: "app.bsky.feed.post",
          text: `reference post number ${n} `.repeat(3),
          createdAt: new Date(Date.UTC(2024, 0, 1, 0, 0, n)).toISOString(),
        },
      });
    }
    const commit = await repo.formatCommit(writes, keypair);
    const blocks = await blocksToCarFile(commit.cid, commit.newBlocks);
    const ops = writes.map((w) => {
      const path = `${w.collection}/${w.rkey}`;
      const cid = w.action === WriteOpAction.Delete ? null : findRecordCid(commit.newBlocks, w);
      return { action: "create", path, cid };
    });
    const seq = firstSeq + i;
    const body = {
      seq,
      rebase: false,
      tooBig: false,
      repo: did,
      commit: commit.cid,
      rev: commit.rev,
      since: commit.since,
      blocks,
      ops,
      blobs: [],
      time: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(),
    };
    out.push({
      frame: concat(cborEncode({ op: 1, t: "#commit" }), cborEncode(body)),
      did,
      rev: commit.rev,
      seq,
    });
    repo = await repo.applyCommit(commit);
  }
  return out;
}

function findRecordCid(blocks: import("@atproto/repo").BlockMap, write: RecordWriteOp) {
  if (write.action === WriteOpAction.Delete) return null;
  const encoded = cborEncode(write.record);
  for (const [cid, bytes] of blocks.entries().map((e) => [e.cid, e.bytes] as const)) {
    if (bytes.length === encoded.length && Buffer.from(bytes).equals(Buffer.from(encoded)))
      return cid;
  }
  throw new Error("record block not found");
}
