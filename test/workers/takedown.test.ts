import { abortAllDurableObjects, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { iterateRecords } from "../../src/log/records";
import { decodeFrame, encodeFrame, type Frame } from "../../src/protocol/frame";
import type { IngestEvent } from "../../src/sequence/hot-log";
import { sequencerStub } from "../../src/stubs";
import { repoIndexFor } from "../../src/xrpc/repo-lookup";
import { commitFrame } from "./support";
import { ADMIN_HEADERS, get, post, productionConfig } from "./xrpc-helpers";

const TIME = "2026-01-01T00:00:00.000Z";

function accountFrame(did: string, active: boolean, status?: string): Uint8Array {
  return encodeFrame({
    kind: "account",
    body: active
      ? { seq: 0, did, time: TIME, active: true }
      : { seq: 0, did, time: TIME, active: false, ...(status ? { status } : {}) },
  });
}

/** One upstream event of each kind about `did`, as a HostIngester would send them. */
function everyKind(host: string, did: string, fromSeq: number): IngestEvent[] {
  const frames = [
    commitFrame(fromSeq, did),
    encodeFrame({ kind: "identity", body: { seq: fromSeq + 1, did, time: TIME } }),
    accountFrame(did, true),
    encodeFrame({
      kind: "sync",
      body: { seq: fromSeq + 3, did, blocks: new Uint8Array(10), rev: "3l6jd7dvzeg2c", time: TIME },
    }),
  ];
  return frames.map((frame, i) => ({ host, upstreamSeq: fromSeq + i, frame, did }));
}

/** The frames the log holds after `afterSeq` (hot only: these tests append little). */
async function framesAfter(afterSeq: number): Promise<Frame[]> {
  const frames: Frame[] = [];
  let after = afterSeq;
  for (;;) {
    const read = await sequencerStub(env).readLog(after, 4_000_000);
    if (read.kind === "caughtUp") return frames;
    if (read.kind !== "hot") throw new Error(`unexpected read ${read.kind}`);
    for (const record of iterateRecords(read.records)) frames.push(decodeFrame(record.frame));
    after = read.lastSeq;
  }
}

describe("relay takedowns, enforced by the Sequencer", () => {
  it("refuses every kind of event of a taken-down DID from any host, and only those", async () => {
    const did = "did:plc:takendown0000000000000";
    const other = "did:plc:bystander0000000000000";
    const sequencer = sequencerStub(env);
    const down = await sequencer.setTakedown(did, true, accountFrame(did, false, "takendown"));
    expect(down).toMatchObject({ changed: true, seq: expect.any(Number) });
    const head = down.seq as number;

    const result = await sequencer.appendBatch({
      events: [
        ...everyKind("pds-a.test", did, 10),
        { host: "pds-a.test", upstreamSeq: 14, frame: commitFrame(14, other), did: other },
        // the same DID through another host (and so, possibly, another ingester)
        ...everyKind("pds-b.test", did, 100),
      ],
    });
    expect(result.accepted).toBe(1);
    expect(result.dropped.map((d) => d.reason)).toEqual(Array(8).fill("RepoTakendown"));
    // refused events are sequenced all the same: never offered again
    expect(result.hostCursors).toEqual({ "pds-a.test": 14, "pds-b.test": 103 });
    const frames = await framesAfter(head - 1);
    expect(frames.map((f) => f.kind)).toEqual(["account", "commit"]);
    expect(frames[0]?.body).toMatchObject({ did, active: false, status: "takendown" });
    expect(frames[1]?.body).toMatchObject({ repo: other });
  });

  it("keeps the cursor of a batch whose every event was refused, across a seal and a restart", async () => {
    const did = "did:plc:takendowncursor00000000";
    const sequencer = sequencerStub(env);
    await sequencer.setTakedown(did, true, accountFrame(did, false, "takendown"));
    const refused = await sequencer.appendBatch({ events: everyKind("pds-c.test", did, 40) });
    expect(refused).toMatchObject({ accepted: 0, hostCursors: { "pds-c.test": 43 } });
    await sequencer.sealNow();
    await abortAllDurableObjects();
    expect(await sequencerStub(env).getHostCursor("pds-c.test")).toBe(43);
  });

  it("holds across a restart, emits one #account however often it is asked, and lifts on restore", async () => {
    const did = "did:plc:takendownrestart00000000";
    const sequencer = sequencerStub(env);
    const first = await sequencer.setTakedown(did, true, accountFrame(did, false, "takendown"));
    const again = await sequencer.setTakedown(did, true, accountFrame(did, false, "takendown"));
    expect(again).toEqual({ changed: false, seq: null });
    expect((await framesAfter((first.seq as number) - 1)).length).toBe(1);

    await abortAllDurableObjects();
    expect(await sequencerStub(env).isTakendown(did)).toBe(true);
    const whileDown = await sequencerStub(env).appendBatch({
      events: everyKind("pds-d.test", did, 1),
    });
    expect(whileDown.accepted).toBe(0);

    const restored = await sequencerStub(env).setTakedown(did, false, accountFrame(did, true));
    expect(restored.changed).toBe(true);
    await abortAllDurableObjects();
    expect(await sequencerStub(env).isTakendown(did)).toBe(false);
    const afterRestore = await sequencerStub(env).appendBatch({
      events: everyKind("pds-d.test", did, 5),
    });
    expect(afterRestore).toMatchObject({ accepted: 4, dropped: [] });
  });
});

describe("admin takedown and restore", () => {
  it("emits one #account per change, and a restore tells the account's real upstream status", async () => {
    const did = "did:plc:admintakedown00000000000";
    // the account is deactivated on its PDS (as its ingester reported)
    await repoIndexFor(env, productionConfig(), did).applyRepoUpdates([
      {
        did,
        host: "pds-e.test",
        rev: "3l6jd7dvzeg2c",
        head: null,
        active: false,
        status: "deactivated",
      },
    ]);
    const { headSeq } = await sequencerStub(env).getLogState();

    const down = await post("/admin/repos/takedown", { did }, ADMIN_HEADERS);
    expect(await down.json()).toMatchObject({ did, active: false, status: "takendown" });
    const retried = await post("/admin/repos/takedown", { did }, ADMIN_HEADERS);
    expect(await retried.json()).toMatchObject({ active: false, status: "takendown", seq: null });
    expect(await (await get(`/xrpc/com.atproto.sync.getRepoStatus?did=${did}`)).json()).toEqual({
      did,
      active: false,
      status: "takendown",
    });

    const up = await post("/admin/repos/restore", { did }, ADMIN_HEADERS);
    expect(await up.json()).toMatchObject({ did, active: false, status: "deactivated" });
    expect(await (await get(`/xrpc/com.atproto.sync.getRepoStatus?did=${did}`)).json()).toEqual({
      did,
      active: false,
      status: "deactivated",
    });
    const again = await post("/admin/repos/restore", { did }, ADMIN_HEADERS);
    expect(await again.json()).toMatchObject({ seq: null });

    const accounts = (await framesAfter(headSeq)).filter((f) => f.kind === "account");
    expect(accounts.map((f) => f.body)).toEqual([
      expect.objectContaining({ did, active: false, status: "takendown" }),
      expect.objectContaining({ did, active: false, status: "deactivated" }),
    ]);
  });
});
