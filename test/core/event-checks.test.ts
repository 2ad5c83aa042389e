import { describe, expect, it } from "vitest";
import { writeCar } from "../../src/protocol/car";
import { encodeDagCbor } from "../../src/protocol/cbor";
import { cidForDagCbor } from "../../src/protocol/cid";
import { checkCommitEvent, checkSyncEvent } from "../../src/protocol/event-checks";
import { type CommitBody, decodeFrame, type Frame, type SyncBody } from "../../src/protocol/frame";
import { loadCapturedFrames } from "../fixtures/captured";
import { errorName } from "../support/protocol-errors";
import { tidFor } from "../support/scripted-pds";

// Real frames captured from the reference PDS (test/fixtures), and single changes to them.
const frames = loadCapturedFrames().map((c) => decodeFrame(c.bytes));
const commits = frames.filter((f): f is Extract<Frame, { kind: "commit" }> => f.kind === "commit");
const syncs = frames.filter((f): f is Extract<Frame, { kind: "sync" }> => f.kind === "sync");
const body: CommitBody = (() => {
  const found = commits.find((f) => f.body.ops.length > 1 && f.body.ops[0]?.action === "create");
  if (!found) throw new Error("no captured multi-op commit");
  return found.body;
})();
const DID = body.repo;

describe("checkCommitEvent", () => {
  it("accepts every #commit captured from the reference PDS, and every #sync", () => {
    expect(commits.length).toBeGreaterThan(10);
    expect(syncs.length).toBeGreaterThan(1);
    for (const f of commits) {
      const checked = checkCommitEvent(f.body, Date.now());
      expect(checked.commitCid.toString()).toBe(f.body.commit.toString());
      expect(checked.commit.did).toBe(f.body.repo);
    }
    for (const f of syncs) expect(checkSyncEvent(f.body, Date.now()).did).toBe(f.body.did);
  });

  it("accepts a real commit", () => {
    const checked = checkCommitEvent(body, Date.now());
    expect(checked).toMatchObject({ did: DID, rev: body.rev });
    expect(checked.commitCid.toString()).toBe(body.commit.toString());
  });

  it.each<[string, (b: CommitBody) => CommitBody, string]>([
    ["invalid repo DID", (b) => ({ ...b, repo: "not-a-did" }), "InvalidSyntax"],
    ["invalid rev", (b) => ({ ...b, rev: "nope" }), "InvalidSyntax"],
    ["tooBig", (b) => ({ ...b, tooBig: true }), "TooBig"],
    ["rebase", (b) => ({ ...b, rebase: true }), "InvalidCommit"],
    ["blocks over the limit", (b) => ({ ...b, blocks: new Uint8Array(2_000_001) }), "TooBig"],
    [
      "too many ops",
      (b) => ({ ...b, ops: Array.from({ length: 201 }, () => b.ops[0]!) }),
      "TooBig",
    ],
    [
      "commit CID that is not the CAR root",
      (b) => ({ ...b, commit: b.ops[0]!.cid! }),
      "InvalidCommit",
    ],
    [
      "repo that is not the commit's DID",
      (b) => ({ ...b, repo: "did:plc:someoneelsexxxxxxxxxxxxx" }),
      "InvalidCommit",
    ],
    ["rev that is not the commit's rev", (b) => ({ ...b, rev: "2222222222222" }), "InvalidCommit"],
    [
      "op cid missing from blocks",
      (b) => ({ ...b, ops: [{ ...b.ops[0]!, cid: cidForDagCbor(encodeDagCbor({ x: 1 })) }] }),
      "MissingBlock",
    ],
    ["bad op path", (b) => ({ ...b, ops: [{ ...b.ops[0]!, path: "no-slash" }] }), "InvalidSyntax"],
    [
      "delete with a cid",
      (b) => ({ ...b, ops: [{ ...b.ops[0]!, action: "delete" }] }),
      "InvalidCommit",
    ],
  ])("rejects %s", (_what, mutate, name) => {
    expect(errorName(() => checkCommitEvent(mutate(body), Date.now()))).toBe(name);
  });

  it("rejects a rev more than five minutes in the future (FutureRev)", () => {
    const future = tidFor((Date.now() + 10 * 60_000) * 1000);
    const commit = {
      did: DID,
      version: 3,
      data: body.commit,
      rev: future,
      prev: null,
      sig: new Uint8Array(64),
    };
    const block = encodeDagCbor(commit);
    const cid = cidForDagCbor(block);
    const blocks = writeCar([cid], [[cid, block]]);
    expect(
      errorName(() =>
        checkCommitEvent({ ...body, rev: future, commit: cid, blocks, ops: [] }, Date.now()),
      ),
    ).toBe("FutureRev");
  });
});

describe("checkSyncEvent", () => {
  it("accepts blocks that carry the commit and rejects oversized ones", () => {
    const block = encodeDagCbor({
      did: DID,
      version: 3,
      data: body.commit,
      rev: body.rev,
      prev: null,
      sig: new Uint8Array(64),
    });
    const cid = cidForDagCbor(block);
    const sync = {
      seq: 1,
      did: DID,
      rev: body.rev,
      time: "2024-01-01T00:00:00.000Z",
      blocks: writeCar([cid], [[cid, block]]),
    };
    expect(checkSyncEvent(sync, Date.now()).commitCid.toString()).toBe(cid.toString());
    expect(
      errorName(() => checkSyncEvent({ ...sync, blocks: new Uint8Array(10_001) }, Date.now())),
    ).toBe("TooBig");
    expect(
      errorName(() =>
        checkSyncEvent({ ...sync, did: "did:plc:otherotherotherotherother" }, Date.now()),
      ),
    ).toBe("InvalidCommit");
  });

  it("rejects a real #sync changed in one field", () => {
    const real = syncs[0]?.body as SyncBody;
    const rootOnly = writeCar([body.commit], []);
    const cases: [SyncBody, string][] = [
      [{ ...real, rev: "notatid" }, "InvalidSyntax"],
      [{ ...real, did: "did:nope" }, "InvalidSyntax"],
      [{ ...real, rev: tidFor((Date.now() + 10 * 60_000) * 1000) }, "FutureRev"],
      [{ ...real, rev: "2222222222222" }, "InvalidCommit"],
      [{ ...real, blocks: rootOnly }, "MissingBlock"],
      [{ ...real, blocks: real.blocks.subarray(0, real.blocks.byteLength - 1) }, "InvalidCar"],
    ];
    for (const [changed, name] of cases)
      expect(errorName(() => checkSyncEvent(changed, Date.now()))).toBe(name);
  });
});
