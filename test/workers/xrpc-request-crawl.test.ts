import { env } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import {
  ADMIN_HEADERS,
  expectXrpcError,
  get,
  newScriptedHost,
  post,
  postRaw,
  productionConfig,
  requestCrawl,
  upstreamSubscribers,
  waitUntil,
} from "./xrpc-helpers";

describe("requestCrawl SSRF policy outside DEV_MODE", () => {
  it.each([
    "10.0.0.1",
    "169.254.169.254",
    "localhost",
    "[::1]",
    "127.0.0.1:2583",
    "localhost:2583",
    "metadata.google.internal",
  ])("refuses %s with 400 before any connection", async (hostname) => {
    const body = await expectXrpcError(
      await requestCrawl(hostname, productionConfig()),
      400,
      "InvalidRequest",
    );
    expect(body.message).toContain("hostname");
  });

  it("refuses a public name that resolves to nothing, saying so", async () => {
    const body = await expectXrpcError(
      await requestCrawl("no-such-pds.freehose-relay-nowhere.com", productionConfig()),
      400,
      "HostNotReachable",
    );
    expect(body.message).toContain("no-such-pds.freehose-relay-nowhere.com");
    expect(body.message).toContain("describeServer");
  });

  it("does not register refused hosts", async () => {
    await requestCrawl("10.0.0.1", productionConfig());
    await expectXrpcError(
      await get("/xrpc/com.atproto.sync.getHostStatus?hostname=10.0.0.1"),
      404,
      "HostNotFound",
    );
  });
});

describe("requestCrawl in DEV_MODE", () => {
  it.each(["10.0.0.1", "169.254.169.254", "localhost", "[::1]:2583"])(
    "still refuses %s",
    async (hostname) => {
      await expectXrpcError(await requestCrawl(hostname), 400, "InvalidRequest");
    },
  );

  it("refuses a loopback port where nothing answers", async () => {
    await expectXrpcError(await requestCrawl("localhost:1"), 400, "HostNotReachable");
  });

  it("refuses a relay (loop guard: its Server header says atproto-relay)", async () => {
    const body = await expectXrpcError(
      await requestCrawl(inject("relayLikeHostname")),
      400,
      "InvalidRequest",
    );
    expect(body.message).toContain("relay");
  });

  it("refuses a host whose describeServer is not a PDS's", async () => {
    const body = await expectXrpcError(
      await requestCrawl(inject("notPdsHostname")),
      400,
      "HostNotReachable",
    );
    expect(body.message).toContain("not JSON");
  });

  it.each([
    ["not JSON", "hostname=x"],
    ["no hostname", JSON.stringify({})],
    ["a number", JSON.stringify({ hostname: 7 })],
    ["an array", JSON.stringify(["localhost:2583"])],
  ])("answers a body with %s with 400", async (_what, body) => {
    await expectXrpcError(
      await postRaw("/xrpc/com.atproto.sync.requestCrawl", body),
      400,
      "InvalidRequest",
    );
  });

  it("is a procedure: GET is refused", async () => {
    const res = await get("/xrpc/com.atproto.sync.requestCrawl?hostname=localhost:2583");
    expect(res.status).toBe(405);
  });

  it("starts ingesting a PDS and is idempotent", async () => {
    const host = await newScriptedHost();
    const first = await requestCrawl(host.hostname);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({});
    expect(first.headers.get("Server")).toContain("atproto-relay");
    await waitUntil("the relay subscribed", async () => (await upstreamSubscribers(host)) === 1);

    // again, with the case and trailing dot a caller might use: same host, still one socket
    const [name, port] = host.hostname.split(":");
    expect((await requestCrawl(`${name?.toUpperCase()}.:${port}`)).status).toBe(200);
    expect((await requestCrawl(host.hostname)).status).toBe(200);
    expect(await upstreamSubscribers(host)).toBe(1);

    const status = await get(`/xrpc/com.atproto.sync.getHostStatus?hostname=${host.hostname}`);
    expect(await status.json()).toMatchObject({ hostname: host.hostname, status: "active" });
    const listed = (await (await get("/xrpc/com.atproto.sync.listHosts?limit=1000")).json()) as {
      hosts: { hostname: string }[];
    };
    expect(listed.hosts.filter((h) => h.hostname === host.hostname)).toHaveLength(1);
  });

  it("keeps its last answer, accepted or refused, for the host's page", async () => {
    const host = await newScriptedHost();
    const page = async () =>
      (await (await get(`/hosts/${host.hostname}`, { Accept: "text/html" })).text()).match(
        /<p id="crawl-answer"[^>]*>(.*?)<\/p>/s,
      )?.[1];
    expect((await requestCrawl(host.hostname)).status).toBe(200);
    expect(await page()).toContain("HTTP 200 (accepted)");
    const ban = await post("/admin/hosts/ban", { hostname: host.hostname }, ADMIN_HEADERS);
    expect(ban.status).toBe(200);
    await expectXrpcError(await requestCrawl(host.hostname), 400, "HostBanned");
    expect(await page()).toContain("HTTP 400 <b>HostBanned</b>");
    await post("/admin/hosts/unban", { hostname: host.hostname }, ADMIN_HEADERS);
    expect((await requestCrawl(host.hostname)).status).toBe(200);
    expect(await page()).toContain("HTTP 200 (accepted)");
  });
});

describe("new hosts per day", () => {
  it("admits a bounded number of new hosts a day, and known hosts always", async () => {
    // a directory object of its own, so the count starts at zero
    const directory = env.HOST_DIRECTORY.get(env.HOST_DIRECTORY.idFromName("per-day-test"));
    expect(await directory.registerHost("a.example.com", 2)).toMatchObject({
      kind: "registered",
      created: true,
    });
    expect(await directory.registerHost("b.example.com", 2)).toMatchObject({ created: true });
    expect(await directory.registerHost("c.example.com", 2)).toEqual({
      kind: "tooManyNewHosts",
      maxNewHostsPerDay: 2,
    });
    expect(await directory.registerHost("a.example.com", 2)).toMatchObject({
      kind: "registered",
      created: false,
    });
    await directory.setBanned("b.example.com", true);
    expect(await directory.registerHost("b.example.com", 2)).toMatchObject({ kind: "banned" });
  });
});
