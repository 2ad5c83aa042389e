import { describe, expect, it } from "vitest";
import { type IdentityLookups, IdentityPrefetch } from "../../src/ingest/identity-prefetch";

/** An identity cache whose look-ups finish when the test says, recording what was asked. */
function lookups() {
  const cached = new Set<string>();
  const asked: { did: string; host: string }[] = [];
  const finish = new Map<string, (ok: boolean) => void>();
  const cache: IdentityLookups = {
    peek: (did) => (cached.has(did) ? { did } : null),
    get: (did, { host }) => {
      asked.push({ did, host });
      return new Promise((resolve, reject) => {
        finish.set(did, (ok) => {
          if (ok) {
            cached.add(did);
            resolve({ did });
          } else reject(new Error("unavailable"));
        });
      });
    },
  };
  const settle = async (did: string, ok = true) => {
    finish.get(did)?.(ok);
    await new Promise((r) => setTimeout(r, 0));
  };
  return { cache, cached, asked, settle };
}

describe("IdentityPrefetch", () => {
  it("looks up an uncached DID once, with the host it was seen on", () => {
    const l = lookups();
    const prefetch = new IdentityPrefetch(l.cache);
    prefetch.want("did:plc:a", "pds.example");
    prefetch.want("did:plc:a", "pds.example");
    l.cached.add("did:plc:b");
    prefetch.want("did:plc:b", "pds.example");
    expect(l.asked).toEqual([{ did: "did:plc:a", host: "pds.example" }]);
  });

  it("runs at most maxRunning at once, the others in arrival order as earlier ones finish", async () => {
    const l = lookups();
    const prefetch = new IdentityPrefetch(l.cache, 2, 100);
    for (const d of ["a", "b", "c", "d"]) prefetch.want(`did:plc:${d}`, "h");
    expect(l.asked.map((a) => a.did)).toEqual(["did:plc:a", "did:plc:b"]);
    expect(prefetch.size).toEqual({ running: 2, waiting: 2 });
    // a failure is left to the identity cache (and to validation): the next one starts
    await l.settle("did:plc:a", false);
    expect(l.asked.map((a) => a.did)).toEqual(["did:plc:a", "did:plc:b", "did:plc:c"]);
    // a DID cached meanwhile (validation got there first) is not looked up again
    l.cached.add("did:plc:d");
    await l.settle("did:plc:b");
    await l.settle("did:plc:c");
    expect(l.asked.map((a) => a.did)).toEqual(["did:plc:a", "did:plc:b", "did:plc:c"]);
    expect(prefetch.size).toEqual({ running: 0, waiting: 0 });
  });

  it("keeps at most maxWaiting DIDs waiting; beyond that nothing is prefetched", () => {
    const l = lookups();
    const prefetch = new IdentityPrefetch(l.cache, 1, 2);
    for (const d of ["a", "b", "c", "d"]) prefetch.want(`did:plc:${d}`, "h");
    expect(prefetch.size).toEqual({ running: 1, waiting: 2 });
    expect(l.asked.map((a) => a.did)).toEqual(["did:plc:a"]);
  });
});
