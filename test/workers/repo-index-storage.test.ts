import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { RepoIndex } from "../../src/ingest/repo-index";

// The RepoIndex's storage across a deploy: the row-per-account table of the previous release
// is moved into the packed store once, and reads answer from it.

describe("RepoIndex storage", () => {
  it("moves repo_entries rows of the previous layout into the packed store, once", async () => {
    const stub = env.REPO_INDEX.get(env.REPO_INDEX.idFromName("repo-index-migration"));
    await runInDurableObject(stub, async (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec(`CREATE TABLE repo_entries (did TEXT PRIMARY KEY, host TEXT NOT NULL,
        rev TEXT NOT NULL, head TEXT, active INTEGER NOT NULL, status TEXT,
        takendown INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT NULL) WITHOUT ROWID`);
      for (let i = 0; i < 300; i++)
        sql.exec(
          "INSERT INTO repo_entries VALUES (?, 'pds.test', ?, ?, 1, NULL, ?, 1000)",
          `did:plc:migrated${String(i).padStart(4, "0")}`,
          i % 3 === 0 ? "" : `rev${i}`,
          i % 3 === 0 ? null : `head${i}`,
          i === 7 ? 1 : 0,
        );
      // what the object does when it starts after the deploy
      const index = new RepoIndex(state, env);
      const tables = sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE name = 'repo_entries'")
        .toArray();
      expect(tables).toEqual([]);
      const taken = await index.getRepo("did:plc:migrated0007");
      expect(taken).toMatchObject({ rev: "rev7", head: "head7", takendown: true, active: false });
      expect(taken!.upstream).toEqual({ active: true, status: null });
      const listed = await index.listRepos(null, 1000);
      expect(listed.length).toBe(200);
      expect(listed.map((e) => e.did)).toEqual(listed.map((e) => e.did).sort());
      // a host's later report keeps the relay's takedown
      await index.applyRepoUpdates([
        {
          did: "did:plc:migrated0007",
          host: "pds.test",
          rev: "rev7b",
          head: "h",
          active: true,
          status: null,
        },
      ]);
      const again = new RepoIndex(state, env);
      expect(await again.getRepo("did:plc:migrated0007")).toMatchObject({
        rev: "rev7b",
        takendown: true,
      });
      expect((await again.listRepos(null, 1000)).length).toBe(200);
    });
  });
});
