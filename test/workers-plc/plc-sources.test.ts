import { abortAllDurableObjects, env, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, inject, it } from "vitest";
import { sequencerStub } from "../../src/stubs";
import {
  crawl,
  type Host,
  ingester,
  newHost,
  push,
  relayedCommits,
  sequencedThrough,
  until,
} from "../workers/ingest-support";

// The relay with PLC_URL = "<mirror>,<PLC>" (vitest.config.ts, project workers-plc): the
// mirror (test/support/plc-mirror.ts) serves the same documents as the scripted PLC and can be
// taken down: its port is closed, as an unreachable directory's is. Hosts are scripted PDS
// hosts whose accounts sign their commits for real, so the relay's authority and signature
// checks run against the documents it resolved. (workerd logs "uncaught exception … Network
// connection lost" for every request to the closed port, although the resolver catches it.)

const plc = inject("plcUrl");
const mirror = inject("plcMirrorUrl");
const mirrorControl = inject("plcMirrorControlUrl");
const RETRY_AFTER_MS = 8_000; // PLC_RETRY_AFTER_SECONDS of the project

async function setMirrorDown(down: boolean): Promise<void> {
  await fetch(`${mirrorControl}/down?on=${down ? 1 : 0}`, { method: "POST" });
}

async function setPlcUnavailable(did: string, on: boolean): Promise<void> {
  await fetch(`${plc}/_unavailable?did=${encodeURIComponent(did)}&on=${on ? 1 : 0}`, {
    method: "POST",
  });
}

/** Document requests for `did` that the PLC, or the mirror, answered. */
async function answeredBy(source: "plc" | "mirror", did: string): Promise<number> {
  const stats = source === "plc" ? `${plc}/_stats` : `${mirrorControl}/stats`;
  const res = await fetch(`${stats}?did=${encodeURIComponent(did)}`);
  return ((await res.json()) as { requests: number }).requests;
}

async function mirrorHealth(host: Host) {
  const health = await ingester(host.hostname).plcSourceHealth();
  const entry = health.find((s) => s.url === mirror);
  if (!entry) throw new Error(`no health for ${mirror} in ${JSON.stringify(health)}`);
  return entry;
}

/** A new host, crawled, whose account's first `count` commits are sequenced. */
async function hostWithCommits(count: number): Promise<Host> {
  const host = await newHost();
  expect((await crawl(host.hostname)).status).toBe(200);
  const seqs = await push(host, count);
  await sequencedThrough(host.hostname, seqs.at(-1)!, 60_000);
  return host;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await setMirrorDown(false);
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe("several PLC sources", () => {
  it("with its first PLC source down, the relay accepts and sequences signed commits, and asks that source again after its backoff", async () => {
    await setMirrorDown(true);
    const first = await hostWithCommits(3);
    const report = await ingester(first.hostname).getHost(first.hostname);
    expect(report?.counters.accepted).toBe(3);
    expect(report?.counters.dropped).toEqual({});
    expect((await relayedCommits(first.did)).length).toBe(3);
    // the mirror was asked and refused the connection; the PLC answered
    const failed = await mirrorHealth(first);
    expect(failed.failures).toBe(1);
    expect(await answeredBy("plc", first.did)).toBe(1);

    // during its backoff the mirror is skipped (asked, it would have failed a second time): a
    // new account is resolved at the PLC alone
    const second = await hostWithCommits(1);
    expect(await mirrorHealth(second)).toEqual(failed);
    expect(await answeredBy("plc", second.did)).toBe(1);

    // the mirror is back; once its backoff is over it is asked first again, and answers
    await setMirrorDown(false);
    const waitMs = failed.retryAtMs - Date.now();
    expect(waitMs).toBeLessThanOrEqual(RETRY_AFTER_MS);
    await new Promise((r) => setTimeout(r, Math.max(0, waitMs) + 200));
    const third = await hostWithCommits(2);
    expect(await answeredBy("mirror", third.did)).toBe(1);
    expect(await answeredBy("plc", third.did)).toBe(0);
    expect(await mirrorHealth(third)).toMatchObject({ failures: 0 });
    expect((await relayedCommits(third.did)).length).toBe(2);
  });

  it("with every PLC source down, a cached document within its grace still validates, and a new account's events wait, then go through", async () => {
    const cached = await hostWithCommits(1);
    // the document names the asking host, so it is kept for a restart; age that copy by two
    // hours: past the 1 h TTL, within the 24 h grace
    await ingester(cached.hostname).publishState();
    const aged = await runInDurableObject(ingester(cached.hostname), (_instance, state) => {
      let count = 0;
      const rows = state.storage.sql
        .exec<{ batch_ms: number; records: string }>(
          "SELECT batch_ms, records FROM identity_batches",
        )
        .toArray();
      for (const row of rows) {
        const records = JSON.parse(row.records) as { did: string; fetchedMs?: number }[];
        for (const record of records)
          if (record.did === cached.did && record.fetchedMs !== undefined) {
            record.fetchedMs = Date.now() - 2 * 60 * 60 * 1000;
            count++;
          }
        state.storage.sql.exec(
          "UPDATE identity_batches SET records = ? WHERE batch_ms = ?",
          JSON.stringify(records),
          row.batch_ms,
        );
      }
      return count;
    });
    expect(aged).toBeGreaterThan(0);

    // every source down: the mirror unreachable, the PLC answering 503 for both accounts
    const uncached = await newHost();
    await setMirrorDown(true);
    await setPlcUnavailable(cached.did, true);
    await setPlcUnavailable(uncached.did, true);
    cleanups.push(
      () => setPlcUnavailable(cached.did, false),
      () => setPlcUnavailable(uncached.did, false),
    );
    // the ingester restarts with the aged copy as its only knowledge of the account
    await abortAllDurableObjects();

    const plcBefore = await answeredBy("plc", cached.did);
    expect((await crawl(cached.hostname)).status).toBe(200);
    const cachedSeqs = await push(cached, 2);
    await sequencedThrough(cached.hostname, cachedSeqs.at(-1)!, 60_000);
    expect((await relayedCommits(cached.did)).length).toBe(3);
    // the directory was asked (and failed): the expired copy was used because no source answered
    expect(await answeredBy("plc", cached.did)).toBeGreaterThan(plcBefore);
    const cachedReport = await ingester(cached.hostname).getHost(cached.hostname);
    expect(cachedReport?.counters.dropped.IdentityUnavailable ?? 0).toBe(0);

    // an account with no copy: its events are held, neither dropped nor forwarded
    expect((await crawl(uncached.hostname)).status).toBe(200);
    const uncachedSeqs = await push(uncached, 2);
    await until(
      "the new account's host to wait for its identity",
      () => ingester(uncached.hostname).getHost(uncached.hostname),
      (r) => (r?.counters.dropped.IdentityUnavailable ?? 0) >= 2,
      60_000,
    );
    const held = await ingester(uncached.hostname).getHost(uncached.hostname);
    expect(held?.status).toBe("throttled");
    expect(held?.counters.accepted).toBe(0);
    expect((await relayedCommits(uncached.did)).length).toBe(0);
    expect(await sequencerStub(env).getHostCursor(uncached.hostname)).toBeFalsy();

    // the sources come back: the held events go through, once each, in order
    await setMirrorDown(false);
    await setPlcUnavailable(uncached.did, false);
    await sequencedThrough(uncached.hostname, uncachedSeqs.at(-1)!, 100_000);
    const relayed = await relayedCommits(uncached.did);
    expect(relayed.length).toBe(2);
    expect(relayed[0]![1] < relayed[1]![1]).toBe(true);
    const done = await ingester(uncached.hostname).getHost(uncached.hostname);
    expect(done?.counters.accepted).toBe(2);
  });
});
