import { abortAllDurableObjects, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { IdentityCache } from "../../src/identity/identity-cache";
import { type HostReport, newHostRecord } from "../../src/ingest/host-record";
import { RepoStateStore, unseenRepo } from "../../src/ingest/repo-state";
import { meterSnapshot, resetMeter } from "../../src/metering/meter";
import { AppendClient } from "../../src/sequence/append-client";
import { hostDirectoryStub, hostIngesterStub, repoIndexStub, sequencerStub } from "../../src/stubs";
import { crawl, ingester, newHost, push, sequencedThrough } from "./ingest-support";
import { appendEvents, connectToFanout, ingestEvents } from "./support";

// Keeps the billed-unit counters honest (src/metering/meter.ts, `npm run cost`, docs/cost.md):
// a known workload gives known row and request counts, so a change that adds a row or a request
// per event fails here.

type Statements = Record<string, { execs: number; rowsWritten: number }>;
const INSERT = "Sequencer: INSERT INTO hot_log ";
const REUSE = "Sequencer: UPDATE hot_log SET first_seq = ?";
const HOST_ROW = "HostIngester: INSERT INTO host_records";

/** Executions and rows written by the statements that start with `prefix`. */
function byPrefix(statements: Statements, prefix: string): { execs: number; rowsWritten: number } {
  const total = { execs: 0, rowsWritten: 0 };
  for (const [key, counted] of Object.entries(statements)) {
    if (!key.startsWith(prefix)) continue;
    total.execs += counted.execs;
    total.rowsWritten += counted.rowsWritten;
  }
  return total;
}

/** Rows written into the hot log by appends (a new row, or a sealed one taken over). */
function hotLogRows(statements: Statements): number {
  return byPrefix(statements, INSERT).rowsWritten + byPrefix(statements, REUSE).rowsWritten;
}

async function settled(): Promise<void> {
  // the meter sums a statement's rows in the microtask after it ran
  await new Promise((r) => setTimeout(r, 10));
}

describe("cost counters", () => {
  it("deliveries to a Fanout go over one session: one billed Fanout request for all of them", async () => {
    const consumer = await connectToFanout("cost-deliveries");
    await settled();
    resetMeter();
    const batches = 10;
    for (let i = 0; i < batches; i++) {
      await appendEvents(2, "cost-deliveries.test", 200);
      // longer than FANOUT_DELIVERY_INTERVAL_MS: one delivery per batch
      await new Promise((r) => setTimeout(r, 80));
    }
    await consumer.waitFor((r) => r.length >= 2 * batches);
    await settled();
    const units = meterSnapshot();
    // the first delivery opened the session, the one billed request; before sessions, each
    // delivery was one (`Fanout.deliver`)
    expect(units.objects.Fanout!.requests).toBe(1);
    expect(units.calls["Fanout.openDeliverySession"]).toBe(1);
    expect(units.calls["Fanout.deliver"]).toBeUndefined();
    expect(units.calls["Fanout.session.deliver"]).toBe(batches);
    expect(units.objects.Fanout!.sessionCalls).toBe(batches);
    consumer.ws.close();
  });

  it("batches over the append socket are messages: N batches, N messages, at most one request", async () => {
    await sequencerStub(env).getLogState();
    resetMeter();
    const batches = 20;
    const client = new AppendClient(env);
    for (let i = 0; i < batches; i++)
      await client.append({ events: ingestEvents(10, "cost.test", 500) });
    client.close();
    await settled();
    const appended = meterSnapshot();
    // each batch is one message on the hibernatable socket (billed 1/20 of a request); the one
    // request is the socket's upgrade (before: an RPC session, which kept the Sequencer awake;
    // before that, one appendBatch request per batch)
    expect(appended.objects.Sequencer!.webSocketMessages).toBe(batches);
    expect(appended.objects.Sequencer!.requests).toBeLessThanOrEqual(1);
    expect(appended.calls["Sequencer.fetch"] ?? 0).toBeLessThanOrEqual(1);
    expect(appended.calls["Sequencer.appendBatch"]).toBeUndefined();
    expect(appended.objects.Sequencer!.sessionCalls).toBe(0);
    // and one answer per batch received by the ingester's end (priced 1/20 too, docs/cost.md),
    // besides the deliveries it relays (the Fanout of the first test is still fed)
    expect(appended.objects.HostIngester!.outboundSocketMessages).toBe(batches + client.relayed);
    // one hot-log row per batch (a lone appender's batches are committed at once, none held
    // for a group nobody joins); an alarm firing meanwhile may add a few
    expect(hotLogRows(appended.statements)).toBe(batches);
    expect(appended.objects.Sequencer!.rowsWritten).toBeLessThanOrEqual(batches + 4);
  });

  it("two ingesters' batches sent at once over their sockets share a group commit: one row per round", async () => {
    await sequencerStub(env).sealNow();
    resetMeter();
    const [a, b] = [new AppendClient(env), new AppendClient(env)];
    const rounds = 8;
    for (let round = 0; round < rounds; round++) {
      // sent together, each round right after the previous one's answers (so within
      // SEQUENCER_GROUP_COMMIT_MS of its commit): both wait for the next commit and share it.
      // A Sequencer that handled one socket's message at a time, its handler awaiting the
      // group, would commit the second batch in a group of its own: two rows per round.
      const results = await Promise.all([
        a.append({ events: ingestEvents(5, "group-a.test", 500) }),
        b.append({ events: ingestEvents(5, "group-b.test", 500) }),
      ]);
      expect(results.map((r) => r.accepted)).toEqual([5, 5]);
    }
    a.close();
    b.close();
    await settled();
    const appended = meterSnapshot();
    expect(appended.objects.Sequencer!.webSocketMessages).toBe(2 * rounds);
    // the first round's first batch is committed at once (nobody else appended in the last
    // second); every later round is one row. One more only if a slow machine lets the two
    // batches of a round arrive a whole window apart.
    const rows = hotLogRows(appended.statements);
    expect(rows).toBeGreaterThanOrEqual(rounds);
    expect(rows).toBeLessThanOrEqual(rounds + 2);
  });

  it("the event log writes one row per group commit, reuses sealed rows, and one request per batch", async () => {
    // what earlier tests appended is sealed first, so no size-triggered seal runs meanwhile
    await sequencerStub(env).sealNow();
    resetMeter();
    const batches = 20;
    // concurrent, as the ingester shards send them: the first is committed at once, the other
    // 19 arrive within SEQUENCER_GROUP_COMMIT_MS (100 ms) of it and share the next commit
    // (a host each: concurrent calls on separate stubs may arrive in any order)
    const appendAll = () =>
      Promise.all(
        Array.from({ length: batches }, (_, i) => appendEvents(10, `cost${i}.test`, 500)),
      );
    // past the previous test's last commit, so the first of these is committed at once
    await new Promise((r) => setTimeout(r, 200));
    const results = await appendAll();
    await settled();
    const appended = meterSnapshot();
    expect(results.every((r) => r.accepted === 10)).toBe(true);
    expect(appended.calls["Sequencer.appendBatch"]).toBe(batches);
    expect(appended.objects.Sequencer!.requests).toBe(batches);
    // two hot-log rows for 20 batches (a row per batch would be 20); a third or fourth only if
    // a slow machine spreads their arrival over more than one window
    const rows = hotLogRows(appended.statements);
    expect(rows).toBeGreaterThanOrEqual(2);
    expect(rows).toBeLessThanOrEqual(4);
    // and little else: an alarm firing meanwhile may add a few
    expect(appended.objects.Sequencer!.rowsWritten).toBeLessThanOrEqual(rows + 4);

    // without a session, each batch is a request of its own
    resetMeter();
    for (let i = 0; i < 3; i++) await appendEvents(10, "cost.test", 500);
    await settled();
    expect(meterSnapshot().objects.Sequencer!.requests).toBe(3);
    expect(meterSnapshot().calls["Sequencer.appendBatch"]).toBe(3);

    await sequencerStub(env).getLogState();
    resetMeter();
    await sequencerStub(env).sealNow();
    await settled();
    const sealed = meterSnapshot();
    // sealed rows are not deleted (a delete is billed per row): the seal writes its segment
    // row, a host cursor per host (row + primary-key index) and its bookkeeping
    expect(hotLogRows(sealed.statements)).toBe(0);
    expect(Object.keys(sealed.statements).filter((k) => k.includes("hot_log "))).toEqual([]);
    // every host's cursor in one snapshot row, whatever the number of hosts sealed (21 here)
    expect(byPrefix(sealed.statements, "Sequencer: INSERT INTO host_cursor_snapshot")).toEqual({
      execs: 1,
      rowsWritten: 1,
    });
    expect(sealed.objects.Sequencer!.rowsWritten).toBeLessThanOrEqual(8);
    expect(sealed.r2.classA).toBe(1);
    expect(sealed.r2.bytesPut).toBeGreaterThan(batches * 10 * 500);

    // the next commits take the sealed rows over: one row written each, no insert
    resetMeter();
    await appendAll();
    await settled();
    const reused = meterSnapshot();
    // one or two group commits, depending on when the first batch arrives after the last one
    const reuse = byPrefix(reused.statements, REUSE);
    expect([1, 2]).toContain(reuse.execs);
    expect(reuse.rowsWritten).toBe(reuse.execs);
    expect(byPrefix(reused.statements, INSERT)).toEqual({ execs: 0, rowsWritten: 0 });
  });

  it("an ingester writes account state per report, not per event", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    await sequencedThrough(host.hostname, (await push(host, 1)).at(-1)!);
    await ingester(host.hostname).publishState();
    await settled();
    resetMeter();
    const events = 40;
    const seqs = await push(host, events);
    await sequencedThrough(host.hostname, seqs.at(-1)!);
    // the report that persists the account state and the host's cursor, as every
    // HOST_REPORT_INTERVAL_SECONDS
    await ingester(host.hostname).publishState();
    await settled();
    const units = meterSnapshot();
    // one delta row holds the account's state and the host's cursor and counters; a row per
    // event would be >= 40
    expect(
      units.statements["HostIngester: INSERT INTO account_state_delta (body) VALUES (?"],
    ).toEqual({ execs: 1, rowsWritten: 1 });
    expect(units.objects.HostIngester!.rowsWritten).toBe(1);
    expect(units.objects.RepoIndex!.rowsWritten).toBe(1);
    expect(units.objects.HostDirectory!.rowsWritten).toBeLessThanOrEqual(1);
    // the batches reach the Sequencer as a few messages on one append socket, not one per event
    expect(units.objects.Sequencer!.webSocketMessages).toBeGreaterThan(0);
    expect(units.objects.Sequencer!.webSocketMessages).toBeLessThan(events / 2);
    expect(units.calls["Sequencer.appendBatch"]).toBeUndefined();
    expect(units.calls["Sequencer.fetch"] ?? 0).toBeLessThanOrEqual(1);
  });

  it("rows written per report do not grow with the number of accounts it changes", async () => {
    const rowsFor = async (accounts: number): Promise<{ ingester: number; index: number }> => {
      const stub = env.HOST_INGESTER.get(env.HOST_INGESTER.idFromName(`cost-accounts-${accounts}`));
      // started before counting: creating the tables of a new object writes rows once
      await runInDurableObject(stub, () => {});
      await repoIndexStub(env, 0).getRepo("did:plc:none");
      await settled();
      resetMeter();
      await runInDurableObject(stub, (_instance, state) => {
        // what a report persists: the acknowledged state of every account changed in the window
        // and the host's cursor that matches it (#persist)
        const repos = new RepoStateStore(state.storage);
        const host = newHostRecord(
          "many.cost.test",
          { eventsPerSecond: 50, maxAccounts: 1e6 },
          false,
        );
        host.cursor = accounts;
        for (let i = 0; i < accounts; i++)
          repos.markAcknowledged({
            ...unseenRepo(`did:plc:costaccounts${String(i).padStart(12, "0")}`, host.hostname),
            rev: "3kabcdefghij2",
            head: "bafyreihead",
            data: "bafyreidata",
          });
        state.storage.transactionSync(() => repos.writeAcknowledged([host]));
      });
      await repoIndexStub(env, 0).applyRepoUpdates(
        Array.from({ length: accounts }, (_, i) => ({
          did: `did:plc:costaccounts${String(i).padStart(12, "0")}`,
          host: "many.cost.test",
          rev: "3kabcdefghij2",
          head: "bafyreihead",
          active: true,
          status: null,
        })),
      );
      await settled();
      const rows = (prefix: string) =>
        Object.entries(meterSnapshot().statements)
          .filter(([statement]) => statement.startsWith(prefix))
          .reduce((n, [, counted]) => n + counted.rowsWritten, 0);
      return { ingester: rows("HostIngester: "), index: rows("RepoIndex: ") };
    };
    const one = await rowsFor(1);
    const many = await rowsFor(200);
    expect(one).toEqual({ ingester: 1, index: 1 });
    expect(many).toEqual(one);
  });

  it("a requestCrawl of a host already active costs three directory calls and no host row", async () => {
    const host = await newHost();
    resetMeter();
    expect((await crawl(host.hostname)).status).toBe(200);
    await settled();
    // a new host's record is written at once (the resume point of a crash right after)
    expect(byPrefix(meterSnapshot().statements, HOST_ROW).rowsWritten).toBeGreaterThan(0);
    const seqs = await push(host, 2);
    await sequencedThrough(host.hostname, seqs.at(-1)!);

    // a PDS pinging requestCrawl while connected: nothing of the host's record changes
    const again = async () => {
      await settled();
      resetMeter();
      expect((await crawl(host.hostname)).status).toBe(200);
      await settled();
      const units = meterSnapshot();
      expect(byPrefix(units.statements, HOST_ROW).rowsWritten).toBe(0);
      // the ban and per-IP limit, the registration (ban and daily cap again, after the
      // describeServer probe), and the ingester's answer with the crawl's answer for its page
      expect(units.calls["HostDirectory.admitCrawl"]).toBe(1);
      expect(units.calls["HostDirectory.registerHost"]).toBe(1);
      expect(units.calls["HostDirectory.reportCrawled"]).toBe(1);
      expect(units.calls["HostDirectory.noteCrawlAnswer"]).toBeUndefined();
    };
    await again();
    // ...and after a restart of the relay (eviction, deploy): the socket is opened again from
    // the cursor, and the connection's times ride in the next report's delta row
    await abortAllDurableObjects();
    await again();
    expect((await ingester(host.hostname).getHost(host.hostname))!.status).toBe("active");
    const more = await push(host, 1);
    await sequencedThrough(host.hostname, more.at(-1)!);
  });

  it("a host report that changes nothing an operator reads writes no row", async () => {
    const directory = hostDirectoryStub(env);
    const report: HostReport = {
      hostname: "quiet.cost.test",
      status: "active",
      cursor: 10,
      accountCount: 3,
      lastError: null,
      lastAttemptMs: 1_000,
      connectedSinceMs: 1_000,
      lastEventMs: 2_000,
      counters: { accepted: 10, dropped: {} },
      ingester: "shard:0",
    };
    await directory.reportHosts([report]);
    const first = (await directory.getHost(report.hostname))!.reportedMs!;
    await new Promise((r) => setTimeout(r, 5));
    resetMeter();
    for (let i = 0; i < 5; i++) await directory.reportHosts([report]);
    await settled();
    expect(meterSnapshot().objects.HostDirectory!.rowsWritten).toBe(0);
    // liveness still moves, in memory
    expect((await directory.getHost(report.hostname))!.reportedMs!).toBeGreaterThan(first);

    // a moved cursor is kept in memory (written with all hosts' progress, at most every
    // HOST_DIRECTORY_PERSIST_SECONDS), and read from there
    resetMeter();
    await directory.reportHosts([{ ...report, cursor: 11, lastEventMs: 3_000 }]);
    await settled();
    expect(meterSnapshot().objects.HostDirectory!.rowsWritten ?? 0).toBe(0);
    const entry = (await directory.getHost(report.hostname))!;
    expect(entry.cursor).toBe(11);
    expect(entry.lastEventMs).toBe(3_000);
  });

  it("busy hosts' reports write their progress once per persist interval; a status change at once", async () => {
    // an object of its own, so its first report and its persist interval are this test's
    // (a stub does not outlive abortAllDurableObjects, so one per use)
    const directory = () =>
      env.HOST_DIRECTORY.get(env.HOST_DIRECTORY.idFromName("progress.cost.test"));
    const hosts = Array.from({ length: 10 }, (_, i) => `busy${i}.cost.test`);
    const report = (hostname: string, round: number): HostReport => ({
      hostname,
      status: "active",
      cursor: round * 10,
      accountCount: 5,
      lastError: null,
      lastAttemptMs: 1_000,
      connectedSinceMs: 1_000,
      lastEventMs: 1_000 + round,
      counters: { accepted: round * 10, dropped: round > 25 ? { WrongHost: round } : {} },
      ingester: "shard:1",
    });
    const restartAged = async (): Promise<void> => {
      // as if HOST_DIRECTORY_PERSIST_SECONDS (600) had passed since the progress was written
      await runInDurableObject(directory(), (_instance, state) => {
        state.storage.sql.exec("UPDATE host_progress SET saved_ms = saved_ms - 600000");
      });
      await abortAllDurableObjects();
    };

    await directory().reportHosts(hosts.map((h) => report(h, 1)));
    await restartAged();
    resetMeter();
    for (let round = 2; round <= 50; round++)
      await directory().reportHosts(hosts.map((h) => report(h, round)));
    await settled();
    const busy = meterSnapshot();
    // the second report writes every host's progress in one row; the 48 after it, nothing (a row
    // per host per report was 490)
    expect(busy.objects.HostDirectory!.rowsWritten).toBe(1);
    expect(
      busy.statements["HostDirectory: INSERT INTO host_progress (chunk, saved_ms, body"],
    ).toEqual({ execs: 1, rowsWritten: 1 });
    // readers see the newest report
    const page = await directory().listHosts(null, 100);
    expect(page.hosts.map((h) => h.cursor)).toEqual(hosts.map(() => 500));
    expect((await directory().totals()).accepted).toBe(10 * 500);
    expect((await directory().totals()).droppedByReason).toEqual({ WrongHost: 10 * 50 });

    // after a restart, the progress written by the second report (the interval has not passed)
    await abortAllDurableObjects();
    const restarted = (await directory().getHost(hosts[1]!))!;
    expect(restarted.status).toBe("active");
    expect(restarted.cursor).toBe(20);
    expect(restarted.counters.accepted).toBe(20);
    // until the next report
    await directory().reportHosts(hosts.map((h) => report(h, 51)));
    expect((await directory().getHost(hosts[1]!))!.cursor).toBe(510);

    // a status change is written at once, with the host's progress in the same row
    resetMeter();
    await directory().reportHosts([
      { ...report(hosts[0]!, 52), status: "throttled", lastError: "rate limit" },
    ]);
    await settled();
    expect(meterSnapshot().objects.HostDirectory!.rowsWritten).toBe(1);
    await abortAllDurableObjects();
    const changed = (await directory().getHost(hosts[0]!))!;
    expect(changed).toMatchObject({ status: "throttled", lastError: "rate limit", cursor: 520 });
    expect((await directory().getHost(hosts[2]!))!.cursor).toBe(20);
  });

  it("500 identity documents fetched are kept in one row and survive a restart", async () => {
    const ingesterObject = () => hostIngesterStub(env, "identity-cost:500");
    const host = "pds.cost.test";
    const dids = Array.from(
      { length: 500 },
      (_, i) => `did:plc:cost${String(i).padStart(20, "0")}`,
    );
    let resolved = 0;
    const resolve = async (did: string) => {
      resolved++;
      return {
        did,
        pdsEndpoint: `https://${host}`,
        handle: `h${did.slice(-6)}.test`,
        signingKey: null,
      };
    };
    const cacheOf = (sql: SqlStorage) =>
      new IdentityCache(sql, { plcUrls: ["http://plc.invalid"], devMode: true }, resolve);

    await runInDurableObject(ingesterObject(), async (_instance, state) => {
      const cache = cacheOf(state.storage.sql);
      await settled();
      resetMeter();
      for (const did of dids) await cache.get(did, { host });
      // as at the ingester's report
      cache.flush();
      await settled();
    });
    const kept = meterSnapshot();
    expect(resolved).toBe(500);
    // a row per document was 500
    expect(kept.objects.HostIngester!.rowsWritten).toBe(1);
    expect(
      Object.entries(kept.statements).filter(([k]) =>
        k.startsWith("HostIngester: INSERT INTO identity_batches"),
      ),
    ).toEqual([[expect.any(String), { execs: 1, rowsWritten: 1 }]]);

    // after a restart the fresh documents are answered without a look-up
    await abortAllDurableObjects();
    resolved = 0;
    await runInDurableObject(ingesterObject(), async (_instance, state) => {
      const cache = cacheOf(state.storage.sql);
      for (const did of dids)
        expect((await cache.get(did, { host })).handle).toBe(`h${did.slice(-6)}.test`);
      // an account moved away: the invalidation outlives the kept copy
      cache.invalidate(dids[7]!);
    });
    expect(resolved).toBe(0);
    await abortAllDurableObjects();
    await runInDurableObject(ingesterObject(), async (_instance, state) => {
      const cache = cacheOf(state.storage.sql);
      expect(cache.peek(dids[7]!)).toBeNull();
      expect(cache.peek(dids[8]!)?.pdsEndpoint).toBe(`https://${host}`);
    });
  });
});
