import { abortAllDurableObjects, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sealSegment } from "../../src/sequence/seal";
import type { Sequencer } from "../../src/sequence/sequencer";
import { sequencerStub } from "../../src/stubs";
import { commitFrame } from "./support";

const DID = "did:plc:resettest000000000000000";

function events(host: string, upstreamSeqs: number[]) {
  return upstreamSeqs.map((upstreamSeq) => ({
    host,
    upstreamSeq,
    frame: commitFrame(upstreamSeq, DID),
    did: DID,
  }));
}

/** An R2 bucket whose put waits until released, to act while a seal is in flight. */
function heldPut(target: R2Bucket): {
  bucket: R2Bucket;
  started: Promise<void>;
  release: () => void;
} {
  let started!: () => void;
  let release!: () => void;
  const startedPromise = new Promise<void>((resolve) => {
    started = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const bucket = new Proxy(target, {
    get(t, prop) {
      if (prop === "put") {
        return async (...args: Parameters<R2Bucket["put"]>) => {
          started();
          await released;
          return t.put(...args);
        };
      }
      const value = Reflect.get(t, prop);
      return typeof value === "function" ? value.bind(t) : value;
    },
  });
  return { bucket, started: startedPromise, release };
}

describe("an admin reset of a host's cursor", () => {
  it("holds when it lands while a seal is putting the host's rows to R2, across a restart", async () => {
    const host = "reset-during-seal.test";
    await sequencerStub(env).appendBatch({ events: events(host, [500, 501, 502]) });
    expect(await sequencerStub(env).getHostCursor(host)).toBe(502);
    await runInDurableObject(sequencerStub(env), async (sequencer: Sequencer, state) => {
      // the seal has read its rows (their cursors included) and waits for its R2 put: the
      // admin's reset arrives then
      const put = heldPut(env.EVENT_LOG);
      const seal = sealSegment({
        storage: state.storage,
        bucket: put.bucket,
        maxBytes: 10_000_000,
        sealOlderThanMs: Number.POSITIVE_INFINITY,
      });
      await put.started;
      await sequencer.resetHostCursor(host);
      put.release();
      expect(await seal).toMatchObject({ sealed: true });
    });
    await abortAllDurableObjects();
    expect(await sequencerStub(env).getHostCursor(host)).toBeNull();
    // the PDS's new, lower numbering is taken
    const renumbered = await sequencerStub(env).appendBatch({ events: events(host, [1]) });
    expect(renumbered).toMatchObject({ accepted: 1, hostCursors: { [host]: 1 } });
  });

  it("is not undone by events read before it, when the batch says under which epoch they were read", async () => {
    const host = "reset-epoch.test";
    const sequencer = sequencerStub(env);
    await sequencer.appendBatch({ events: events(host, [700, 701]), hostEpochs: { [host]: 0 } });
    const before = await sequencer.getHostPosition(host);
    expect(before).toEqual({ cursor: 701, epoch: 0 });

    const epoch = await sequencer.resetHostCursor(host);
    expect(epoch).toBe(1);
    // an ingester's batch of the old numbering, still on its way when the admin reset the host
    const stale = await sequencer.appendBatch({
      events: events(host, [702, 703]),
      hostEpochs: { [host]: before.epoch },
    });
    expect(stale).toMatchObject({
      accepted: 0,
      dropped: [
        { host, upstreamSeq: 702, reason: "CursorReset" },
        { host, upstreamSeq: 703, reason: "CursorReset" },
      ],
    });
    expect(await sequencer.getHostPosition(host)).toEqual({ cursor: null, epoch: 1 });

    const fresh = await sequencer.appendBatch({
      events: events(host, [1, 2]),
      hostEpochs: { [host]: epoch },
    });
    expect(fresh).toMatchObject({ accepted: 2, dropped: [], hostCursors: { [host]: 2 } });
    await abortAllDurableObjects();
    expect(await sequencerStub(env).getHostPosition(host)).toEqual({ cursor: 2, epoch: 1 });
  });
});
