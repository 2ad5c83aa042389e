import { env, SELF } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { readConfig } from "../../src/config";
import { ingesterObjectName } from "../../src/ingest/partition";
import { hostIngesterStub } from "../../src/stubs";
import { RELAY } from "./support";

const control = inject("upstreamControlUrl");
const ADMIN = { Authorization: "Bearer test-admin-token", "Content-Type": "application/json" };

async function get(path: string): Promise<Response> {
  return SELF.fetch(`${RELAY}${path}`);
}

async function post(
  path: string,
  body: unknown,
  headers: Record<string, string> = { "Content-Type": "application/json" },
) {
  return SELF.fetch(`${RELAY}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
}

async function hostWithCommits(
  count: number,
): Promise<{ id: string; hostname: string; did: string }> {
  const host = (await (await fetch(`${control}/pds`, { method: "POST" })).json()) as {
    id: string;
    hostname: string;
    did: string;
  };
  expect(
    (await post("/xrpc/com.atproto.sync.requestCrawl", { hostname: host.hostname })).status,
  ).toBe(200);
  await fetch(`${control}/pds/${host.id}/good?count=${count}`, { method: "POST" });
  const ingester = hostIngesterStub(
    env,
    ingesterObjectName(host.hostname, false, readConfig(env).ingestShards),
  );
  const deadline = Date.now() + 15_000;
  while ((await ingester.getHost(host.hostname))?.counters.accepted !== count) {
    if (Date.now() > deadline) throw new Error("events did not arrive");
    await new Promise((r) => setTimeout(r, 100));
  }
  await ingester.publishState();
  return host;
}

describe("XRPC errors", () => {
  it("answers unknown methods with 501 MethodNotImplemented and a relay Server header", async () => {
    const res = await get("/xrpc/com.example.nothing");
    expect(res.status).toBe(501);
    expect(await res.json()).toMatchObject({ error: "MethodNotImplemented" });
    expect(res.headers.get("Server")).toContain("atproto-relay");
  });

  it.each([
    ["/xrpc/com.atproto.sync.getRepoStatus", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.getRepoStatus?did=nope", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.getRepoStatus?did=did:plc:unknownunknownunknown", 404, "RepoNotFound"],
    [
      "/xrpc/com.atproto.sync.getLatestCommit?did=did:plc:unknownunknownunknown",
      404,
      "RepoNotFound",
    ],
    ["/xrpc/com.atproto.sync.getHostStatus", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.getHostStatus?hostname=nowhere.example.com", 404, "HostNotFound"],
    ["/xrpc/com.atproto.sync.listHosts?limit=0", 400, "InvalidRequest"],
    ["/xrpc/com.atproto.sync.listRepos?limit=5000", 400, "InvalidRequest"],
  ])("%s -> %i %s", async (path, status, error) => {
    const res = await get(path);
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ error, message: expect.any(String) });
  });
});

describe("requestCrawl", () => {
  it.each(["10.0.0.1", "169.254.169.254", "[::1]", "localhost", "192.168.0.1:80"])(
    "refuses %s with 400 even in DEV_MODE",
    async (hostname) => {
      const res = await post("/xrpc/com.atproto.sync.requestCrawl", { hostname });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: "InvalidRequest" });
    },
  );

  it("refuses a host that does not answer describeServer", async () => {
    const res = await post("/xrpc/com.atproto.sync.requestCrawl", { hostname: "localhost:1" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "HostNotReachable" });
  });

  it("refuses a body without hostname", async () => {
    expect((await post("/xrpc/com.atproto.sync.requestCrawl", {})).status).toBe(400);
  });
});

// (outputs are validated against the lexicons in test/integration, where @atproto/lexicon loads)
describe("host and repo endpoints", () => {
  it("report a crawled host and its repos", async () => {
    const host = await hostWithCommits(3);
    const status = (await (
      await get(`/xrpc/com.atproto.sync.getHostStatus?hostname=${host.hostname}`)
    ).json()) as Record<string, unknown>;
    expect(status).toMatchObject({
      hostname: host.hostname,
      status: "active",
      seq: 3,
      accountCount: 1,
    });

    const hosts = await (await get("/xrpc/com.atproto.sync.listHosts")).json();

    const repo = await (await get(`/xrpc/com.atproto.sync.getRepoStatus?did=${host.did}`)).json();
    expect(repo).toMatchObject({ did: host.did, active: true });

    const latest = (await (
      await get(`/xrpc/com.atproto.sync.getLatestCommit?did=${host.did}`)
    ).json()) as { cid: string; rev: string };
    expect(latest.rev).toBe((repo as { rev: string }).rev);
  });

  it("pages listRepos across index shards in DID order", async () => {
    const dids: string[] = [];
    for (let i = 0; i < 5; i++) dids.push((await hostWithCommits(1)).did);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = (await (
        await get(`/xrpc/com.atproto.sync.listRepos?limit=2${cursor ? `&cursor=${cursor}` : ""}`)
      ).json()) as {
        repos: { did: string }[];
        cursor?: string;
      };
      seen.push(...page.repos.map((r) => r.did));
      cursor = page.cursor;
    } while (cursor);
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(seen.length);
    for (const did of dids) expect(seen).toContain(did);
  });
});

describe("admin", () => {
  it("needs the bearer token", async () => {
    expect((await get("/admin/hosts")).status).toBe(401);
    const wrong = await SELF.fetch(`${RELAY}/admin/hosts`, {
      headers: { Authorization: "Bearer nope" },
    });
    expect(wrong.status).toBe(401);
    const right = await SELF.fetch(`${RELAY}/admin/hosts`, { headers: ADMIN });
    expect(right.status).toBe(200);
  });

  it("bans a host (refusing its requestCrawl) and unbans it", async () => {
    const host = await hostWithCommits(1);
    expect((await post("/admin/hosts/ban", { hostname: host.hostname }, ADMIN)).status).toBe(200);
    const refused = await post("/xrpc/com.atproto.sync.requestCrawl", { hostname: host.hostname });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: "HostBanned" });
    const status = await (
      await get(`/xrpc/com.atproto.sync.getHostStatus?hostname=${host.hostname}`)
    ).json();
    expect(status).toMatchObject({ status: "banned" });
    expect((await post("/admin/hosts/unban", { hostname: host.hostname }, ADMIN)).status).toBe(200);
    expect(
      (await post("/xrpc/com.atproto.sync.requestCrawl", { hostname: host.hostname })).status,
    ).toBe(200);
  });

  it("takes down an account: status changes and an #account event is emitted", async () => {
    const host = await hostWithCommits(1);
    const res = await post("/admin/repos/takedown", { did: host.did }, ADMIN);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ did: host.did, active: false, status: "takendown" });
    const status = await (await get(`/xrpc/com.atproto.sync.getRepoStatus?did=${host.did}`)).json();
    expect(status).toMatchObject({ active: false, status: "takendown" });
    const latest = await get(`/xrpc/com.atproto.sync.getLatestCommit?did=${host.did}`);
    expect(await latest.json()).toMatchObject({ error: "RepoTakendown" });
    // its next commits are not relayed
    await fetch(`${control}/pds/${host.id}/good?count=2`, { method: "POST" });
    const ingester = hostIngesterStub(
      env,
      ingesterObjectName(host.hostname, false, readConfig(env).ingestShards),
    );
    const deadline = Date.now() + 10_000;
    while (!(await ingester.getHost(host.hostname))?.counters.dropped.RepoInactive) {
      if (Date.now() > deadline) throw new Error("takedown not enforced");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await ingester.getHost(host.hostname))?.counters.dropped.RepoInactive).toBe(2);
  });

  it("lists hosts with counters and reports metrics", async () => {
    const list = (await (await SELF.fetch(`${RELAY}/admin/hosts`, { headers: ADMIN })).json()) as {
      hosts: { counters: unknown; lastError: unknown }[];
    };
    expect(list.hosts.length).toBeGreaterThan(0);
    expect(list.hosts[0]).toHaveProperty("counters");
    const metrics = await (await get("/metrics")).text();
    expect(metrics).toMatch(/freehose_head_seq \d+/);
    expect(metrics).toMatch(/freehose_events_accepted_total \d+/);
  });
});
