import { abortAllDurableObjects, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sealSegment } from "../../src/sequence/seal";
import { sequencerStub } from "../../src/stubs";
import { appendEvents, connect, expectContiguous, seqs } from "./support";

/** An R2 bucket that fails at a chosen step, to stop a seal half-way as a crash would. */
function failingBucket(failOn: "put" | "afterPut"): R2Bucket {
  return new Proxy(env.EVENT_LOG, {
    get(target, prop) {
      if (prop === "put") {
        return async (...args: Parameters<R2Bucket["put"]>) => {
          if (failOn === "put") throw new Error("injected crash before the segment is durable");
          await target.put(...args);
          throw new Error("injected crash after the R2 put, before the index and trim");
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function crashDuringSeal(failOn: "put" | "afterPut"): Promise<void> {
  await runInDurableObject(sequencerStub(env), async (_instance, state) => {
    await expect(
      sealSegment({
        storage: state.storage,
        bucket: failingBucket(failOn),
        maxBytes: 1_000_000,
        sealOlderThanMs: Number.POSITIVE_INFINITY,
      }),
    ).rejects.toThrow(/injected crash/);
  });
  await abortAllDurableObjects();
}

describe("crash safety of sealing", () => {
  it.each(["put", "afterPut"] as const)(
    "a crash at %s loses and duplicates nothing; seqs stay contiguous",
    async (failOn) => {
      for (let i = 0; i < 4; i++) await appendEvents(30);
      await crashDuringSeal(failOn);
      // after the restart the seal completes, and appends continue from the same head
      await appendEvents(10);
      const sealed = await sequencerStub(env).sealNow();
      expect(sealed.sealed).toBe(true);
      const state = await sequencerStub(env).getLogState();
      expect(state.hotRows).toBe(0);
      const consumer = await connect(0);
      await consumer.waitFor((r) => r.length >= state.headSeq);
      expectContiguous(seqs(consumer.received), 1, state.headSeq);
      consumer.ws.close();
      const listed = await env.EVENT_LOG.list({ prefix: "segments/" });
      expect(listed.objects.length).toBe(state.segments);
    },
  );
});
