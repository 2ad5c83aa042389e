import { describe, expect, it } from "vitest";
import { verifyCommitSignature } from "../../src/protocol/commit";
import { parseDidDocument } from "../../src/protocol/did-doc";
import type { PublicKey } from "../../src/protocol/did-key";
import { checkCommitEvent, checkSyncEvent } from "../../src/protocol/event-checks";
import { decodeFrame, type Frame } from "../../src/protocol/frame";
import { readFrameSeq } from "../../src/protocol/seq-rewrite";
import {
  type CapturedFrame,
  loadCapturedFrames,
  loadDidDocuments,
  loadManifest,
} from "../fixtures/captured";

// Frames captured from the reference PDS (and P-256 commits made by @atproto/repo), held to what
// the reference decoder read from them (scripts/capture-fixtures.ts).

const manifest = loadManifest();
const captured = loadCapturedFrames();
const keys = new Map<string, PublicKey>();
for (const doc of Object.values(loadDidDocuments())) {
  const info = parseDidDocument(doc);
  if (info.signingKey) keys.set(info.did, info.signingKey);
}

function keyOf(did: string): PublicKey {
  const key = keys.get(did);
  if (!key) throw new Error(`no DID document captured for ${did}`);
  return key;
}

function label(c: CapturedFrame): string {
  return `${c.file}#${c.index} (${c.kind} seq ${c.seq})`;
}

/** The parts of a decoded frame the manifest records, in the manifest's shape. */
function summary(frame: Frame): Record<string, unknown> {
  switch (frame.kind) {
    case "commit": {
      const b = frame.body;
      return {
        kind: "commit",
        seq: b.seq,
        did: b.repo,
        rev: b.rev,
        commit: b.commit.toString(),
        since: b.since,
        ops: b.ops.map((op) => [op.action, op.path, op.cid?.toString() ?? null]),
        blobs: b.blobs.map(String),
      };
    }
    case "sync":
      return { kind: "sync", seq: frame.body.seq, did: frame.body.did, rev: frame.body.rev };
    case "identity":
      return {
        kind: "identity",
        seq: frame.body.seq,
        did: frame.body.did,
        handle: frame.body.handle ?? null,
      };
    case "account":
      return {
        kind: "account",
        seq: frame.body.seq,
        did: frame.body.did,
        active: frame.body.active,
        status: frame.body.status ?? null,
      };
    default:
      return { kind: frame.kind };
  }
}

describe("frames captured from the reference implementation", () => {
  it("cover every event kind a PDS emits and both signing curves", () => {
    const kinds = new Set(captured.map((c) => c.kind));
    expect([...kinds].sort()).toEqual(["account", "commit", "identity", "sync"]);
    const curves = new Set(
      captured.filter((c) => c.kind === "commit").map((c) => keyOf(c.did ?? "").curve),
    );
    expect([...curves].sort()).toEqual(["p256", "secp256k1"]);
    const actions = new Set(captured.flatMap((c) => c.ops?.map(([action]) => action) ?? []));
    expect([...actions].sort()).toEqual(["create", "delete", "update"]);
  });

  it("decode to what the reference decoder read", () => {
    for (const c of captured) {
      const { file: _f, index: _i, bytes, ...expected } = c;
      expect(summary(decodeFrame(bytes)), label(c)).toEqual(expected);
      expect(readFrameSeq(bytes), label(c)).toBe(c.seq);
    }
  });

  it("pass the stateless checks, and every commit signature verifies against the DID document's key", () => {
    const now = Date.now();
    let verified = 0;
    for (const c of captured) {
      const frame = decodeFrame(c.bytes);
      if (frame.kind !== "commit" && frame.kind !== "sync") continue;
      const checked =
        frame.kind === "commit"
          ? checkCommitEvent(frame.body, now)
          : checkSyncEvent(frame.body, now);
      expect(checked.did, label(c)).toBe(c.did);
      expect(checked.rev, label(c)).toBe(c.rev);
      expect(verifyCommitSignature(checked.commit, keyOf(checked.did)), label(c)).toBe(true);
      verified++;
    }
    const signed = Object.values(manifest.files)
      .flatMap((f) => f.frames)
      .filter((f) => f.kind === "commit" || f.kind === "sync").length;
    expect(verified).toBe(signed);
  });

  it("do not verify against another account's key", () => {
    const dids = [...keys.keys()];
    for (const c of captured) {
      const frame = decodeFrame(c.bytes);
      if (frame.kind !== "commit") continue;
      const other = dids.find((d) => d !== frame.body.repo) ?? "";
      const checked = checkCommitEvent(frame.body, Date.now());
      expect(verifyCommitSignature(checked.commit, keyOf(other)), label(c)).toBe(false);
    }
  });

  it("are rejected once a byte of the commit's signature changes", () => {
    for (const c of captured.filter((f) => f.kind === "commit").slice(0, 10)) {
      const frame = decodeFrame(c.bytes);
      if (frame.kind !== "commit") continue;
      const { commit } = checkCommitEvent(frame.body, Date.now());
      const sig = commit.sig.slice();
      sig[10] = (sig[10] ?? 0) ^ 1;
      expect(verifyCommitSignature({ ...commit, sig }, keyOf(c.did ?? "")), label(c)).toBe(false);
    }
  });
});
