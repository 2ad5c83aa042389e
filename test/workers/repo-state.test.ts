import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  applyNewerHosts,
  type HostRecord,
  loadHosts,
  newHostRecord,
  prepareHostsTable,
  saveHosts,
} from "../../src/ingest/host-record";
import { type RepoState, RepoStateStore, unseenRepo } from "../../src/ingest/repo-state";

// The ingester's persisted state as a restart reads it back (src/ingest/repo-state.ts over the
// packed store): account states, the host records and account counts written in delta rows,
// and what compaction moves into runs, host rows and count rows.

function account(i: number, host: string, rev: string): RepoState {
  return { ...unseenRepo(`did:plc:repostate${String(i).padStart(6, "0")}`, host), rev };
}

/** What the HostIngester constructor does: host rows, then newer copies from the deltas. */
function restart(storage: DurableObjectStorage): {
  repos: RepoStateStore;
  hosts: Map<string, HostRecord>;
} {
  prepareHostsTable(storage);
  const hosts = loadHosts(storage.sql);
  const repos = new RepoStateStore(storage, { compactAtDeltas: 3 });
  applyNewerHosts(hosts, repos.replayedHosts);
  return { repos, hosts };
}

describe("ingester account state", () => {
  it("restores states, cursors and counts exactly, before and after compaction", async () => {
    const stub = env.HOST_INGESTER.get(env.HOST_INGESTER.idFromName("repo-state-restart"));
    await runInDurableObject(stub, (_instance, state) => {
      const storage = state.storage;
      let { repos, hosts } = restart(storage);
      const a = newHostRecord("a.repostate.test", { eventsPerSecond: 50, maxAccounts: 100 }, false);
      const b = newHostRecord("b.repostate.test", { eventsPerSecond: 50, maxAccounts: 100 }, false);
      saveHosts(storage, [a, b]);
      // two reports: a's cursor moves in both; a config change of b in between is a row write
      for (const [i, rev] of [
        [1, "r1"],
        [2, "r1"],
        [1, "r2"],
      ] as const)
        repos.markAcknowledged(account(i, a.hostname, rev));
      a.cursor = 10;
      storage.transactionSync(() => repos.writeAcknowledged([a]));
      b.limits = { eventsPerSecond: 5, maxAccounts: 7 };
      saveHosts(storage, [b]);
      repos.markAcknowledged(account(3, b.hostname, "r1"));
      a.cursor = 20;
      b.cursor = 5;
      storage.transactionSync(() => repos.writeAcknowledged([a, b]));

      ({ repos, hosts } = restart(storage));
      expect(hosts.get(a.hostname)!.cursor).toBe(20);
      expect(hosts.get(b.hostname)).toMatchObject({ cursor: 5, limits: { maxAccounts: 7 } });
      expect(repos.get(account(1, "", "").did)).toMatchObject({ rev: "r2", host: a.hostname });
      expect(repos.countForHost(a.hostname)).toBe(2);
      expect(repos.countForHost(b.hostname)).toBe(1);

      // a third delta makes compaction due: runs, host rows and counts, deltas deleted
      const a2 = hosts.get(a.hostname)!;
      repos.markAcknowledged(account(2, b.hostname, "r2")); // the account moved to b
      a2.cursor = 30;
      storage.transactionSync(() => repos.writeAcknowledged([a2]));
      expect(repos.compactIfDue(() => hosts.values())).toBe(true);
      expect(storage.sql.exec("SELECT COUNT(*) AS n FROM account_state_delta").one().n).toBe(0);
      // every host and count in one snapshot row, not a row per host
      expect(storage.sql.exec("SELECT COUNT(*) AS n FROM account_state_snapshot").one().n).toBe(1);

      ({ repos, hosts } = restart(storage));
      expect(repos.replayedHosts.map((h) => JSON.parse(h).hostname).sort()).toEqual(
        [a.hostname, b.hostname].sort(),
      );
      expect(hosts.get(a.hostname)!.cursor).toBe(30);
      expect(hosts.get(b.hostname)!.cursor).toBe(5);
      expect(repos.get(account(2, "", "").did)).toMatchObject({ rev: "r2", host: b.hostname });
      expect(repos.countForHost(a.hostname)).toBe(1);
      expect(repos.countForHost(b.hostname)).toBe(2);
    });
  });

  it("moves repo_state rows of the previous layout into the packed store, once", async () => {
    const stub = env.HOST_INGESTER.get(env.HOST_INGESTER.idFromName("repo-state-migration"));
    await runInDurableObject(stub, (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec(`CREATE TABLE repo_state (did TEXT PRIMARY KEY, host TEXT NOT NULL,
        rev TEXT NOT NULL, head TEXT, data TEXT, active INTEGER NOT NULL, status TEXT,
        flag TEXT) WITHOUT ROWID`);
      sql.exec(
        "CREATE TABLE IF NOT EXISTS repo_state_counts (host TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
      );
      for (let i = 0; i < 50; i++)
        sql.exec(
          "INSERT INTO repo_state VALUES (?, 'old.test', ?, 'h', 'd', 1, NULL, NULL)",
          account(i, "", "").did,
          `rev${i}`,
        );
      sql.exec("INSERT INTO repo_state_counts VALUES ('old.test', 50)");
      const repos = new RepoStateStore(state.storage);
      expect(
        sql.exec("SELECT name FROM sqlite_master WHERE name = 'repo_state'").toArray(),
      ).toEqual([]);
      expect(repos.get(account(42, "", "").did)).toMatchObject({
        host: "old.test",
        rev: "rev42",
        head: "h",
        data: "d",
        active: true,
      });
      expect(repos.countForHost("old.test")).toBe(50);
    });
  });
});
