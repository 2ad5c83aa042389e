import { describe, expect, it } from "vitest";
import { readCar } from "../../src/protocol/car";
import { CID } from "../../src/protocol/cid";
import { decodeCommit } from "../../src/protocol/commit";
import { decodeFrame } from "../../src/protocol/frame";
import {
  checkCommitOps,
  emptyTreeCid,
  leavesOf,
  mstKeyHeight,
  mstRoot,
} from "../../src/protocol/mst";
import { loadCapturedFrames } from "../fixtures/captured";
import { readInteropJson } from "../support/interop";

type Height = { key: string; height: number };
type Proof = {
  comment: string;
  leafValue: string;
  keys: string[];
  adds: string[];
  dels: string[];
  rootBeforeCommit: string;
  rootAfterCommit: string;
  blocksInProof: string[];
};

describe("MST (official interop vectors)", () => {
  it.each(
    readInteropJson<Height[]>("mst", "key_heights.json").map((h) => [h.key, h.height] as const),
  )("height of %j is %i", (key, height) => {
    expect(mstKeyHeight(key)).toBe(height);
  });

  const proofs = readInteropJson<Proof[]>("firehose", "commit-proof-fixtures.json");

  it.each(proofs.map((p) => [p.comment, p] as const))(
    "%s: roots before and after, and inversion from the proof alone",
    (_c, p) => {
      const value = CID.parse(p.leafValue);
      const before = p.keys.map((k) => [k, value] as [string, CID]);
      expect(mstRoot(leavesOf(before)).toString()).toBe(p.rootBeforeCommit);

      const afterKeys = [...p.keys.filter((k) => !p.dels.includes(k)), ...p.adds];
      const blocks = new Map<string, Uint8Array>();
      const after = mstRoot(leavesOf(afterKeys.map((k) => [k, value])), blocks);
      expect(after.toString()).toBe(p.rootAfterCommit);

      // only the blocks of the proof are given: enough to check the ops and invert them
      const proofBlocks = new Map([...blocks].filter(([cid]) => p.blocksInProof.includes(cid)));
      const ops = [
        ...p.adds.map((path) => ({ action: "create" as const, path, cid: value })),
        ...p.dels.map((path) => ({ action: "delete" as const, path, cid: null, prev: value })),
      ];
      const check = checkCommitOps(after, ops, proofBlocks);
      expect(check).toEqual({ ok: true, previousRoot: expect.anything() });
      if (check.ok) expect(check.previousRoot?.toString()).toBe(p.rootBeforeCommit);

      // without the root node nothing can be proven
      const noRoot = new Map(proofBlocks);
      noRoot.delete(after.toString());
      expect(checkCommitOps(after, ops, noRoot).ok).toBe(false);
    },
  );

  it("the empty tree has a fixed root", () => {
    expect(mstRoot([]).toString()).toBe(emptyTreeCid().toString());
  });

  it("rejects ops the tree contradicts", () => {
    const p = proofs[0] as Proof;
    const value = CID.parse(p.leafValue);
    const blocks = new Map<string, Uint8Array>();
    const root = mstRoot(leavesOf([...p.keys, ...p.adds].map((k) => [k, value])), blocks);
    const other = CID.parse(p.rootBeforeCommit);
    expect(
      checkCommitOps(root, [{ action: "create", path: p.adds[0] as string, cid: other }], blocks)
        .ok,
    ).toBe(false);
    expect(
      checkCommitOps(
        root,
        [{ action: "delete", path: p.keys[0] as string, cid: null, prev: value }],
        blocks,
      ).ok,
    ).toBe(false);
    expect(
      checkCommitOps(root, [{ action: "create", path: "zz/not-there", cid: value }], blocks).ok,
    ).toBe(false);
  });
});

describe("MST proofs of commits captured from the reference PDS", () => {
  it("every commit's ops invert to its prevData", () => {
    let inverted = 0;
    for (const captured of loadCapturedFrames()) {
      const frame = decodeFrame(captured.bytes);
      if (frame.kind !== "commit") continue;
      const car = readCar(frame.body.blocks);
      const commit = decodeCommit(car.blocks.get(frame.body.commit.toString()) as Uint8Array);
      const check = checkCommitOps(commit.data, frame.body.ops, car.blocks);
      expect(check, `${frame.body.repo} ${frame.body.rev}`).toMatchObject({ ok: true });
      if (check.ok && check.previousRoot && frame.body.prevData) {
        expect(check.previousRoot.toString()).toBe(frame.body.prevData.toString());
        inverted++;
      }
    }
    expect(inverted).toBeGreaterThan(10);
  });
});

describe("checkCommitEvent holds sync 1.1 commits to their proof", () => {
  it("rejects a captured commit whose prevData is not what its ops invert to", async () => {
    const { checkCommitEvent } = await import("../../src/protocol/event-checks");
    const { ProtocolError } = await import("../../src/protocol/errors");
    const commits = loadCapturedFrames()
      .map((c) => decodeFrame(c.bytes))
      .filter(
        (f) =>
          f.kind === "commit" &&
          f.body.prevData &&
          f.body.ops.length > 0 &&
          f.body.ops.every((op) => op.action === "create"),
      );
    expect(commits.length).toBeGreaterThan(5);
    const first = commits[0];
    if (first?.kind !== "commit") throw new Error("no commits");
    const second = commits.find(
      (f) => f.kind === "commit" && !f.body.prevData?.equals(first.body.prevData as CID),
    );
    if (second?.kind !== "commit") throw new Error("no other commit");
    expect(() => checkCommitEvent(first.body, Date.now())).not.toThrow();
    expect(second.body.prevData?.equals(first.body.prevData as CID)).toBe(false);
    const forged = { ...first.body, prevData: second.body.prevData as CID };
    let name = "";
    try {
      checkCommitEvent(forged, Date.now());
    } catch (err) {
      if (err instanceof ProtocolError) name = err.name;
    }
    expect(name).toBe("InvalidMstProof");
  });
});
