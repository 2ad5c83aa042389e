import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { readConfig } from "../../src/config";
import {
  IDENTITY_RECHECK_AFTER_MS,
  IdentityCache,
  WASTED_LOOKUPS_BURST,
} from "../../src/identity/identity-cache";
import { IdentityUnavailable } from "../../src/identity/resolver";
import { ingesterObjectName } from "../../src/ingest/partition";
import { hostIngesterStub } from "../../src/stubs";
import { crawl, ingester, newHost, push, sequencedThrough, until } from "./ingest-support";

// Identity look-ups are driven by what upstream hosts send, so they are bounded (issue 10,
// item 11): a burst of events about one DID costs one PLC request, failures are remembered
// briefly, look-ups that authorise nothing spend a per-host budget (then IdentityUnavailable,
// which the ingester retries), and rows are written only for changed documents or documents of
// the asking host. PLC requests are counted by the scripted PLC directory itself.

const plc = inject("plcUrl");

async function plcRequests(did: string): Promise<number> {
  return (
    (await (await fetch(`${plc}/_stats?did=${encodeURIComponent(did)}`)).json()) as {
      requests: number;
    }
  ).requests;
}

async function setUnavailable(did: string, on: boolean): Promise<void> {
  await fetch(`${plc}/_unavailable?did=${encodeURIComponent(did)}&on=${on ? 1 : 0}`, {
    method: "POST",
  });
}

async function foreignAccount(hostname: string): Promise<{ did: string; seqs: number[] }> {
  const res = await fetch(`http://${hostname}/_script/foreign?count=0`, { method: "POST" });
  return (await res.json()) as { did: string; seqs: number[] };
}

/** SQL statements that write, through an IdentityCache given this SqlStorage. */
function countingWrites(sql: SqlStorage): { sql: SqlStorage; writes: () => number } {
  let writes = 0;
  const counting = new Proxy(sql, {
    get(target, prop, receiver) {
      if (prop !== "exec") return Reflect.get(target, prop, receiver);
      return (query: string, ...bindings: unknown[]) => {
        if (/^\s*(INSERT|UPDATE|DELETE|REPLACE)/i.test(query)) writes++;
        return target.exec(query, ...bindings);
      };
    },
  });
  return { sql: counting, writes: () => writes };
}

async function inFreshObject(
  name: string,
  fn: (cache: IdentityCache, writes: () => number, sql: SqlStorage) => Promise<void>,
): Promise<void> {
  const config = readConfig(env);
  await runInDurableObject(hostIngesterStub(env, name), async (_instance, state) => {
    const counted = countingWrites(state.storage.sql);
    await fn(
      new IdentityCache(counted.sql, { plcUrls: config.plcUrls, devMode: config.devMode }),
      counted.writes,
      state.storage.sql,
    );
  });
}

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    return err instanceof Error ? err.name : String(err);
  }
}

describe("identity look-ups", () => {
  it("a hostile host's 200 events about an account it does not hold cost a bounded number of PLC requests", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    const res = await fetch(`http://${host.hostname}/_script/foreign?count=200`, {
      method: "POST",
    });
    const foreign = (await res.json()) as { did: string; seqs: number[] };
    const [last] = await push(host, 1);
    await sequencedThrough(host.hostname, last!, 40_000);
    const report = await until(
      "the drops to be counted",
      () => ingester(host.hostname).getHost(host.hostname),
      (r) => (r?.counters.dropped.WrongHost ?? 0) >= 200,
    );
    expect(report?.counters.dropped.WrongHost).toBe(200);
    // one look-up, and one more per IDENTITY_RECHECK_AFTER_MS the burst lasted
    expect(await plcRequests(foreign.did)).toBeLessThanOrEqual(4);
    // and no kept copy: another host's account is not worth one (a cache over the object's
    // storage, as after a restart, does not know it)
    const shard = ingesterObjectName(host.hostname, false, readConfig(env).ingestShards);
    const kept = await runInDurableObject(hostIngesterStub(env, shard), async (_instance, state) =>
      new IdentityCache(state.storage.sql, { plcUrls: [plc], devMode: true }).peek(foreign.did),
    );
    expect(kept).toBeNull();
  });

  it("looks a refused document up again only after the re-check interval, and stores no row for it", async () => {
    const host = await newHost();
    const foreign = await foreignAccount(host.hostname);
    const before = await plcRequests(foreign.did);
    await inFreshObject("identity-test:refused", async (cache, writes) => {
      for (let i = 0; i < 200; i++) {
        const doc = await cache.get(foreign.did, { host: host.hostname });
        expect(doc.pdsEndpoint).toBe("https://elsewhere.example.com");
        await cache.get(foreign.did, {
          host: host.hostname,
          maxAgeMs: IDENTITY_RECHECK_AFTER_MS,
        });
      }
      cache.flush();
      expect(writes()).toBe(0);
    });
    expect((await plcRequests(foreign.did)) - before).toBe(1);
  });

  it("writes a row for the asking host's own account once, not per look-up", async () => {
    const host = await newHost();
    await inFreshObject("identity-test:own", async (cache, writes) => {
      for (let i = 0; i < 50; i++) await cache.get(host.did, { host: host.hostname, maxAgeMs: 0 });
      cache.flush();
      // every look-up went to the PLC (maxAgeMs 0), the unchanged document was kept once
      expect(writes()).toBe(1);
    });
  });

  it("remembers failures briefly and answers IdentityUnavailable while the PLC is down", async () => {
    const host = await newHost();
    const foreign = await foreignAccount(host.hostname);
    await setUnavailable(foreign.did, true);
    try {
      const before = await plcRequests(foreign.did);
      await inFreshObject("identity-test:down", async (cache) => {
        for (let i = 0; i < 20; i++) {
          const err = await cache.get(foreign.did, { host: host.hostname }).catch((e) => e);
          expect(err).toBeInstanceOf(IdentityUnavailable);
        }
      });
      // one resolution of three attempts, then answered from memory
      expect((await plcRequests(foreign.did)) - before).toBe(3);
    } finally {
      await setUnavailable(foreign.did, false);
    }
  });

  it("uses an expired copy for ordinary checks while the PLC is down, never for a re-check", async () => {
    const host = await newHost();
    await setUnavailable(host.did, true);
    try {
      await inFreshObject("identity-test:stale", async (_cache, _writes, sql) => {
        // a copy fetched two hours ago, as a row of the cache's own table
        const twoHoursAgo = Date.now() - 2 * 60 * 60 * 1000;
        sql.exec(
          "INSERT INTO identity_batches (batch_ms, records) VALUES (?, ?)",
          Date.now(),
          JSON.stringify([
            {
              did: host.did,
              pds: `http://${host.hostname}`,
              handle: null,
              key: null,
              fetchedMs: twoHoursAgo,
            },
          ]),
        );
        const stale = new IdentityCache(sql, { plcUrls: readConfig(env).plcUrls, devMode: true });
        const doc = await stale.get(host.did, { host: host.hostname });
        expect(doc.pdsEndpoint).toBe(`http://${host.hostname}`);
        expect(
          await outcome(
            stale.get(host.did, { host: host.hostname, maxAgeMs: IDENTITY_RECHECK_AFTER_MS }),
          ),
        ).toBe("IdentityUnavailable");
      });
    } finally {
      await setUnavailable(host.did, false);
    }
  });

  it("a host's look-ups that authorise nothing spend its budget, then wait; other hosts are not affected", async () => {
    const hostile = await newHost();
    const honest = await newHost();
    const unknown = Array.from(
      { length: WASTED_LOOKUPS_BURST + 20 },
      (_, i) => `did:plc:notregistered${String(i).padStart(6, "0")}${Date.now() % 100000}`,
    );
    await inFreshObject("identity-test:budget", async (cache) => {
      const outcomes: string[] = [];
      for (const did of unknown)
        outcomes.push(await outcome(cache.get(did, { host: hostile.hostname })));
      expect(outcomes.filter((o) => o === "InvalidDidDocument").length).toBeLessThanOrEqual(
        WASTED_LOOKUPS_BURST + 1,
      );
      expect(outcomes.slice(-10)).toEqual(Array(10).fill("IdentityUnavailable"));
      expect(await outcome(cache.get(honest.did, { host: honest.hostname }))).toBe("ok");
    });
    let requested = 0;
    for (const did of unknown) requested += await plcRequests(did);
    expect(requested).toBeLessThanOrEqual(WASTED_LOOKUPS_BURST + 1);
  });
});
