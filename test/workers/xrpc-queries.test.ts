import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { readConfig } from "../../src/config";
import { repoIndexShard } from "../../src/ingest/partition";
import type { RepoUpdate } from "../../src/ingest/repo-index";
import { repoIndexStub } from "../../src/stubs";
import {
  crawledHostWithCommits,
  expectLexiconValid,
  expectXrpcError,
  get,
  lexiconError,
  newScriptedHost,
  requestCrawl,
} from "./xrpc-helpers";

const HEAD = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";

/** Puts repos in the index the way ingesters do: one coalesced update per shard. */
async function indexRepos(updates: RepoUpdate[]): Promise<void> {
  const shards = readConfig(env).repoIndexShards;
  const byShard = new Map<number, RepoUpdate[]>();
  for (const u of updates) {
    const shard = repoIndexShard(u.did, shards);
    byShard.set(shard, [...(byShard.get(shard) ?? []), u]);
  }
  await Promise.all(
    [...byShard].map(([shard, batch]) => repoIndexStub(env, shard).applyRepoUpdates(batch)),
  );
}

function repo(did: string, fields: Partial<RepoUpdate> = {}): RepoUpdate {
  return {
    did,
    host: "pds.example.com",
    rev: "3l6jd7dvzeg2c",
    head: HEAD,
    active: true,
    status: null,
    ...fields,
  };
}

async function body<T>(res: Response): Promise<T> {
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

describe("parameter errors", () => {
  it.each([
    ["/xrpc/com.atproto.sync.getRepoStatus", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.getRepoStatus?did=nope", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.getRepoStatus?did=did:plc:unknownunknownunknown", 404, "RepoNotFound"],
    [
      "/xrpc/com.atproto.sync.getLatestCommit?did=did:plc:unknownunknownunknown",
      404,
      "RepoNotFound",
    ],
    ["/xrpc/com.atproto.sync.getLatestCommit", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.getHostStatus", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.getHostStatus?hostname=nowhere.example.com", 404, "HostNotFound"],
    ["/xrpc/com.atproto.sync.listHosts?limit=0", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.listHosts?limit=1001", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.listHosts?limit=ten", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.listHosts?cursor=not-ours", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.listRepos?limit=0", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.listRepos?limit=5000", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.listRepos?cursor=garbage", 400, "InvalidRequest"],
    ["/xrpc/com.example.nothing", 501, "MethodNotImplemented"],
  ])("%s -> %i %s", async (path, status, error) => {
    await expectXrpcError(await get(path), status, error);
  });

  it("answers unknown non-XRPC paths with 404 and the relay's Server header", async () => {
    await expectXrpcError(await get("/nothing/here"), 404, "NotFound");
  });
});

describe("hosts", () => {
  it("checks outputs against the lexicons for real (a wrong shape fails)", async () => {
    expect(await lexiconError("com.atproto.sync.getHostStatus", { status: "active" })).toContain(
      "hostname",
    );
    const noHead = { repos: [{ did: "did:plc:abc", rev: "3l6jd7dvzeg2c" }] };
    expect(await lexiconError("com.atproto.sync.listRepos", noHead)).toContain("head");
  });

  it("report a crawled host as its lexicons define", async () => {
    const host = await crawledHostWithCommits(3);
    const status = await body<Record<string, unknown>>(
      await get(`/xrpc/com.atproto.sync.getHostStatus?hostname=${host.hostname}`),
    );
    expect(status).toEqual({ hostname: host.hostname, status: "active", seq: 3, accountCount: 1 });
    await expectLexiconValid("com.atproto.sync.getHostStatus", status);

    // the hostname is looked up in the form requestCrawl stored it
    const upper = await get(
      `/xrpc/com.atproto.sync.getHostStatus?hostname=${host.hostname.toUpperCase()}`,
    );
    expect(await body(upper)).toEqual(status);

    const list = await body<{ hosts: unknown[] }>(await get("/xrpc/com.atproto.sync.listHosts"));
    expect(list.hosts).toContainEqual(status);
    await expectLexiconValid("com.atproto.sync.listHosts", list);
  });

  it("pages listHosts in the order hosts were first seen, without repeats", async () => {
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      const host = await newScriptedHost();
      expect((await requestCrawl(host.hostname)).status).toBe(200);
      names.push(host.hostname);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await body<{ hosts: { hostname: string }[]; cursor?: string }>(
        await get(`/xrpc/com.atproto.sync.listHosts?limit=2${cursor ? `&cursor=${cursor}` : ""}`),
      );
      await expectLexiconValid("com.atproto.sync.listHosts", page);
      expect(page.hosts.length).toBeLessThanOrEqual(2);
      seen.push(...page.hosts.map((h) => h.hostname));
      cursor = page.cursor;
      pages++;
    } while (cursor && pages < 100);
    expect(new Set(seen).size).toBe(seen.length);
    const ours = seen.filter((h) => names.includes(h));
    expect(ours).toEqual(names);
  });
});

describe("repos", () => {
  it("report a crawled account as the lexicons define", async () => {
    const host = await crawledHostWithCommits(2);
    const status = await body<{ did: string; active: boolean; rev: string }>(
      await get(`/xrpc/com.atproto.sync.getRepoStatus?did=${host.did}`),
    );
    expect(status).toEqual({ did: host.did, active: true, rev: expect.any(String) });
    await expectLexiconValid("com.atproto.sync.getRepoStatus", status);

    const latest = await body<{ cid: string; rev: string }>(
      await get(`/xrpc/com.atproto.sync.getLatestCommit?did=${host.did}`),
    );
    expect(latest).toEqual({ cid: expect.stringMatching(/^bafy/), rev: status.rev });
    await expectLexiconValid("com.atproto.sync.getLatestCommit", latest);

    const list = await body<{ repos: { did: string }[] }>(
      await get("/xrpc/com.atproto.sync.listRepos?limit=1000"),
    );
    expect(list.repos).toContainEqual({
      did: host.did,
      head: latest.cid,
      rev: latest.rev,
      active: true,
    });
    await expectLexiconValid("com.atproto.sync.listRepos", list);
  });

  it("pages listRepos across every index shard in DID order", async () => {
    const dids = Array.from(
      { length: 40 },
      (_, i) => `did:plc:pagetest${String(i).padStart(4, "0")}${"x".repeat(12)}`,
    );
    const shards = new Set(dids.map((d) => repoIndexShard(d, readConfig(env).repoIndexShards)));
    expect(shards.size).toBeGreaterThan(4);
    // not listed: an account seen only through #identity/#account, with no commit yet
    await indexRepos([
      ...dids.map((d) => repo(d)),
      repo("did:plc:pagetestnocommitxxxxxxxx", { head: null, rev: "" }),
    ]);

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await body<{ repos: { did: string }[]; cursor?: string }>(
        await get(`/xrpc/com.atproto.sync.listRepos?limit=7${cursor ? `&cursor=${cursor}` : ""}`),
      );
      await expectLexiconValid("com.atproto.sync.listRepos", page);
      expect(page.repos.length).toBeLessThanOrEqual(7);
      seen.push(...page.repos.map((r) => r.did));
      cursor = page.cursor;
      pages++;
    } while (cursor && pages < 100);
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((d) => d.startsWith("did:plc:pagetest"))).toEqual(dids);
  });

  it.each([
    ["deactivated", 400, "RepoDeactivated"],
    ["suspended", 400, "RepoSuspended"],
    ["takendown", 400, "RepoTakendown"],
    ["deleted", 404, "RepoNotFound"],
    ["desynchronized", 404, "RepoNotFound"],
  ])("reports a %s account and refuses its latest commit", async (status, code, error) => {
    const did = `did:plc:inactive${status.padEnd(16, "x")}`;
    await indexRepos([repo(did, { active: false, status })]);
    const view = await body<Record<string, unknown>>(
      await get(`/xrpc/com.atproto.sync.getRepoStatus?did=${did}`),
    );
    expect(view).toEqual({ did, active: false, status });
    await expectLexiconValid("com.atproto.sync.getRepoStatus", view);
    await expectXrpcError(
      await get(`/xrpc/com.atproto.sync.getLatestCommit?did=${did}`),
      code,
      error,
    );
    const list = await body<{ repos: { did: string }[] }>(
      await get(`/xrpc/com.atproto.sync.listRepos?limit=1000&cursor=${did.slice(0, -1)}`),
    );
    expect(list.repos[0]).toEqual({ did, head: HEAD, rev: "3l6jd7dvzeg2c", active: false, status });
    await expectLexiconValid("com.atproto.sync.listRepos", list);
  });
});
