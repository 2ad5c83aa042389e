import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { sequencerStub } from "../../src/stubs";
import { connect } from "./support";
import {
  ADMIN_HEADERS,
  crawledHostWithCommits,
  expectXrpcError,
  get,
  ingesterFor,
  post,
  productionConfig,
  pushCommits,
  requestCrawl,
  routeWith,
  upstreamSubscribers,
  waitUntil,
} from "./xrpc-helpers";

type AdminHost = {
  hostname: string;
  status: string;
  pinned: boolean;
  banned: boolean;
  limits: { eventsPerSecond: number; maxAccounts: number } | null;
  lastError: string | null;
  lastAttemptMs: number | null;
  counters: { accepted: number; dropped: Record<string, number> };
  lagMs: number | null;
  ingester: string;
};

async function adminHost(hostname: string): Promise<AdminHost | undefined> {
  const res = await get("/admin/hosts?limit=1000", ADMIN_HEADERS);
  expect(res.status).toBe(200);
  const list = (await res.json()) as { hosts: AdminHost[] };
  return list.hosts.find((h) => h.hostname === hostname);
}

describe("admin authorisation", () => {
  it("is disabled (403) on every admin route when no token is configured", async () => {
    const disabled = productionConfig({ adminToken: undefined });
    for (const path of ["/admin/hosts", "/admin/hosts/ban", "/admin/repos/takedown"]) {
      const res = await routeWith(disabled, path, {
        method: path === "/admin/hosts" ? "GET" : "POST",
        headers: ADMIN_HEADERS,
        body: path === "/admin/hosts" ? undefined : JSON.stringify({ hostname: "a.example.com" }),
      });
      const body = await expectXrpcError(res, 403, "AdminDisabled");
      expect(body.message).toContain("disabled");
    }
  });

  it("needs the right bearer token (401 otherwise)", async () => {
    await expectXrpcError(await get("/admin/hosts"), 401, "AuthenticationRequired");
    await expectXrpcError(
      await get("/admin/hosts", { Authorization: "Bearer nope" }),
      401,
      "AuthenticationRequired",
    );
    await expectXrpcError(
      await get("/admin/hosts", { Authorization: "test-admin-token" }),
      401,
      "AuthenticationRequired",
    );
    // an action is refused before it does anything
    await expectXrpcError(
      await post("/admin/hosts/ban", { hostname: "victim.example.com" }),
      401,
      "AuthenticationRequired",
    );
    await expectXrpcError(
      await get("/xrpc/com.atproto.sync.getHostStatus?hostname=victim.example.com"),
      404,
      "HostNotFound",
    );
    expect((await get("/admin/hosts", ADMIN_HEADERS)).status).toBe(200);
  });
});

describe("admin host actions", () => {
  it("bans a host: disconnected at once, requestCrawl refused; unban resumes it", async () => {
    const host = await crawledHostWithCommits(1);
    expect(await upstreamSubscribers(host)).toBe(1);
    const log = vi.spyOn(console, "log");
    const res = await post("/admin/hosts/ban", { hostname: host.hostname }, ADMIN_HEADERS);
    expect(res.status).toBe(200);
    expect(log.mock.calls.flat().join("\n")).toContain('"action":"ban host"');
    log.mockRestore();
    await waitUntil("the socket closed", async () => (await upstreamSubscribers(host)) === 0);

    await expectXrpcError(await requestCrawl(host.hostname), 400, "HostBanned");
    const status = await get(`/xrpc/com.atproto.sync.getHostStatus?hostname=${host.hostname}`);
    expect(await status.json()).toMatchObject({ hostname: host.hostname, status: "banned" });
    expect(await upstreamSubscribers(host)).toBe(0);

    const unban = await post("/admin/hosts/unban", { hostname: host.hostname }, ADMIN_HEADERS);
    expect(unban.status).toBe(200);
    await waitUntil("the relay resubscribed", async () => (await upstreamSubscribers(host)) === 1);
    expect((await requestCrawl(host.hostname)).status).toBe(200);
    const after = await get(`/xrpc/com.atproto.sync.getHostStatus?hostname=${host.hostname}`);
    expect(await after.json()).toMatchObject({ status: "active" });
  });

  it("can ban a host before it ever asked to be crawled", async () => {
    const res = await post("/admin/hosts/ban", { hostname: "Spam.Example.com." }, ADMIN_HEADERS);
    expect(await res.json()).toEqual({ hostname: "spam.example.com", status: "banned" });
    await expectXrpcError(
      await requestCrawl("spam.example.com", productionConfig()),
      400,
      "HostBanned",
    );
  });

  it("sets a host's limits and pins it to an object of its own, keeping its cursor", async () => {
    const host = await crawledHostWithCommits(2);
    await expectXrpcError(
      await post(
        "/admin/hosts/limits",
        { hostname: host.hostname, eventsPerSecond: 0 },
        ADMIN_HEADERS,
      ),
      400,
      "InvalidRequest",
    );
    const limits = { eventsPerSecond: 500, maxAccounts: 10_000 };
    expect(
      (await post("/admin/hosts/limits", { hostname: host.hostname, ...limits }, ADMIN_HEADERS))
        .status,
    ).toBe(200);
    expect(await adminHost(host.hostname)).toMatchObject({ limits, pinned: false });

    const pin = await post("/admin/hosts/pin", { hostname: host.hostname }, ADMIN_HEADERS);
    expect(await pin.json()).toEqual({ hostname: host.hostname, pinned: true });
    expect(await adminHost(host.hostname)).toMatchObject({
      pinned: true,
      ingester: `host:${host.hostname}`,
      limits,
    });
    // the pinned object carries on from the cursor: new events only, none twice
    await waitUntil(
      "the pinned object subscribed",
      async () => (await upstreamSubscribers(host)) === 1,
    );
    await pushCommits(host, 2);
    const pinned = ingesterFor(host.hostname, true);
    await waitUntil(
      "the pinned object accepted the new events",
      async () => (await pinned.getHost(host.hostname))?.cursor === 4,
    );
    // the host's counters move with it: the 2 accepted before the pin and the 2 after, none twice
    expect((await pinned.getHost(host.hostname))?.counters.accepted).toBe(4);
  });

  it("resets a host's upstream cursor", async () => {
    const host = await crawledHostWithCommits(2);
    const res = await post("/admin/hosts/reset-cursor", { hostname: host.hostname }, ADMIN_HEADERS);
    expect(await res.json()).toEqual({ hostname: host.hostname, cursor: null });
    expect(await sequencerStub(env).getHostCursor(host.hostname)).toBeNull();
    expect((await ingesterFor(host.hostname).getHost(host.hostname))?.cursor).toBeNull();
  });

  it.each(["/admin/hosts/unban", "/admin/hosts/reset-cursor", "/admin/hosts/pin"])(
    "%s answers 404 HostNotFound for an unknown host",
    async (path) => {
      await expectXrpcError(
        await post(path, { hostname: "unknown.example.com" }, ADMIN_HEADERS),
        404,
        "HostNotFound",
      );
    },
  );

  it("lists hosts with everything an operator needs, and /metrics sums them", async () => {
    const host = await crawledHostWithCommits(2);
    const listed = await adminHost(host.hostname);
    expect(listed).toMatchObject({
      status: "active",
      banned: false,
      lastError: null,
      lastAttemptMs: expect.any(Number),
      counters: { accepted: 2, dropped: {} },
      lagMs: expect.any(Number),
    });
    const metrics = await (await get("/metrics")).text();
    expect(metrics).toMatch(/^freehose_head_seq \d+$/m);
    expect(metrics).toMatch(/^freehose_hosts\{status="active"\} [1-9]\d*$/m);
    const accepted = Number(/^freehose_events_accepted_total (\d+)$/m.exec(metrics)?.[1]);
    expect(accepted).toBeGreaterThanOrEqual(2);
  });

  it("/metrics counts the consumers connected, by Fanout", async () => {
    const consumersNow = async () => {
      const text = await (await get("/metrics")).text();
      return [...text.matchAll(/^freehose_consumers\{fanout="([^"]+)"\} (\d+)$/gm)].reduce(
        (sum, m) => sum + Number(m[2]),
        0,
      );
    };
    const before = await consumersNow();
    const { headSeq } = await sequencerStub(env).getLogState();
    const consumer = await connect(headSeq);
    expect(await consumersNow()).toBe(before + 1);
    consumer.ws.close();
  });
});

describe("admin account actions", () => {
  it("takes an account down and restores it, telling consumers through #account", async () => {
    const host = await crawledHostWithCommits(1);
    const { headSeq } = await sequencerStub(env).getLogState();
    const consumer = await connect(headSeq);

    const down = await post("/admin/repos/takedown", { did: host.did }, ADMIN_HEADERS);
    expect(await down.json()).toMatchObject({ did: host.did, active: false, status: "takendown" });
    expect(
      await (await get(`/xrpc/com.atproto.sync.getRepoStatus?did=${host.did}`)).json(),
    ).toEqual({ did: host.did, active: false, status: "takendown" });
    await expectXrpcError(
      await get(`/xrpc/com.atproto.sync.getLatestCommit?did=${host.did}`),
      400,
      "RepoTakendown",
    );

    // its next commits are not relayed (the Sequencer refuses them, the ingester counts them),
    // and a later report from its host does not undo it
    await pushCommits(host, 2);
    const ingester = ingesterFor(host.hostname);
    await waitUntil(
      "the takedown was enforced",
      async () => (await ingester.getHost(host.hostname))?.counters.dropped.RepoTakendown === 2,
    );
    await ingester.publishState();
    expect(
      await (await get(`/xrpc/com.atproto.sync.getRepoStatus?did=${host.did}`)).json(),
    ).toMatchObject({ active: false, status: "takendown" });

    const up = await post("/admin/repos/restore", { did: host.did }, ADMIN_HEADERS);
    expect(await up.json()).toMatchObject({ did: host.did, active: true });
    expect(
      await (await get(`/xrpc/com.atproto.sync.getRepoStatus?did=${host.did}`)).json(),
    ).toMatchObject({ did: host.did, active: true });

    const received = await consumer.waitFor(
      (r) => r.filter((e) => e.frame.kind === "account").length >= 2,
    );
    const accounts = received.filter((e) => e.frame.kind === "account").map((e) => e.frame.body);
    expect(accounts).toEqual([
      expect.objectContaining({ did: host.did, active: false, status: "takendown" }),
      expect.objectContaining({ did: host.did, active: true }),
    ]);
    expect(received.some((e) => e.frame.kind === "commit")).toBe(false);
    consumer.ws.close();
  });

  it("answers 404 RepoNotFound and 400 for accounts it cannot act on", async () => {
    await expectXrpcError(
      await post("/admin/repos/takedown", { did: "did:plc:neverseenneverseen" }, ADMIN_HEADERS),
      404,
      "RepoNotFound",
    );
    await expectXrpcError(
      await post("/admin/repos/takedown", { did: "not-a-did" }, ADMIN_HEADERS),
      400,
      "InvalidRequest",
    );
  });
});
