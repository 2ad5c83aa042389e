import { abortAllDurableObjects, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type Config, readConfig } from "../../src/config";
import { type Host, newHost, push, until, upstreamState } from "./ingest-support";
import { ADMIN_HEADERS, expectXrpcError, ingesterFor, post, routeWith } from "./xrpc-helpers";

// requestCrawl's limits: trusted hosts' own limits (TRUSTED_HOST_SUFFIXES), the per-IP rate,
// the daily cap on new hosts (NEW_HOSTS_PER_DAY), and the admin token that skips the last two.

function crawlAs(
  config: Config,
  hostname: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return routeWith(config, "/xrpc/com.atproto.sync.requestCrawl", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ hostname }),
  });
}

/** New hosts may hold no account, trusted ones a few: which limits a host got shows at once. */
function trustConfig(trustedHostSuffixes: string[]): Config {
  return {
    ...readConfig(env),
    newHostMaxAccounts: 0,
    trustedHostSuffixes,
    trustedHostMaxAccounts: 5,
    trustedHostEventsPerSecond: 1_000,
  };
}

async function counters(hostname: string) {
  return (await ingesterFor(hostname).getHost(hostname))?.counters;
}

/**
 * Has a crawled host emit three commits of its account and waits until the relay processed
 * them (accepted, or dropped: then the Sequencer's cursor for the host does not move).
 */
async function pushThree(host: Host) {
  await until(
    "the relay subscribed",
    () => upstreamState(host),
    (s) => s.subscribers === 1,
  );
  await push(host, 3);
  return until(
    "three events processed",
    () => counters(host.hostname),
    (c) => (c?.accepted ?? 0) + Object.values(c?.dropped ?? {}).reduce((a, b) => a + b, 0) >= 3,
  );
}

/** Crawls a new scripted host with `config`; what became of three commits of its account. */
async function crawlAndPush(config: Config) {
  const host = await newHost();
  expect((await crawlAs(config, host.hostname)).status).toBe(200);
  return pushThree(host);
}

describe("trusted hosts (TRUSTED_HOST_SUFFIXES)", () => {
  it("a host under a trusted suffix gets the trusted limits when it is first crawled", async () => {
    // scripted hosts are `localhost:<port>`; the port is not part of the name matched
    expect(await crawlAndPush(trustConfig(["localhost"]))).toMatchObject({
      accepted: 3,
      dropped: {},
    });
  });

  it("a host outside them gets the limits for new hosts", async () => {
    expect(await crawlAndPush(trustConfig([".host.bsky.network"]))).toMatchObject({
      accepted: 0,
      dropped: { AccountLimit: 3 },
    });
  });

  it("limits an admin set win over the trusted ones", async () => {
    const config = trustConfig(["localhost"]);
    const host = await newHost();
    expect((await crawlAs(config, host.hostname)).status).toBe(200);
    const limits = { eventsPerSecond: 1_000, maxAccounts: 0 };
    const set = await post(
      "/admin/hosts/limits",
      { hostname: host.hostname, ...limits },
      ADMIN_HEADERS,
    );
    expect(set.status).toBe(200);
    // crawled again by the trusted configuration: the admin's limits stay
    expect((await crawlAs(config, host.hostname)).status).toBe(200);
    expect(await pushThree(host)).toMatchObject({ accepted: 0, dropped: { AccountLimit: 3 } });
  });

  it("refuses suffixes that are not DNS names, saying which", () => {
    expect(() =>
      readConfig({ ...env, TRUSTED_HOST_SUFFIXES: ".host.bsky.network, *.evil" }),
    ).toThrow(/TRUSTED_HOST_SUFFIXES.*"\*\.evil"/);
    expect(
      readConfig({ ...env, TRUSTED_HOST_SUFFIXES: " .Host.Bsky.Network , example.com" })
        .trustedHostSuffixes,
    ).toEqual([".host.bsky.network", "example.com"]);
    expect(readConfig({ ...env, TRUSTED_HOST_SUFFIXES: "" }).trustedHostSuffixes).toEqual([]);
    expect(() => readConfig({ ...env, NEW_HOSTS_PER_DAY: "many" })).toThrow(/NEW_HOSTS_PER_DAY/);
  });
});

describe("requestCrawl per client IP (REQUEST_CRAWL_PER_IP_PER_MINUTE)", () => {
  // a port where nothing answers: each admitted call is refused by the describeServer probe (400),
  // after the rate check
  const nowhere = "localhost:1";

  it("answers 429 RateLimitExceeded with Retry-After past the limit, per IP", async () => {
    const config = { ...readConfig(env), requestCrawlPerIpPerMinute: 2 };
    const ip = { "CF-Connecting-IP": "198.51.100.7" };
    await expectXrpcError(await crawlAs(config, nowhere, ip), 400, "HostNotReachable");
    await expectXrpcError(await crawlAs(config, nowhere, ip), 400, "HostNotReachable");
    const refused = await crawlAs(config, nowhere, ip);
    const retryAfter = Number(refused.headers.get("Retry-After"));
    const body = await expectXrpcError(refused, 429, "RateLimitExceeded");
    expect(body.message).toContain("2 requestCrawl calls a minute");
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // another client is counted apart
    await expectXrpcError(
      await crawlAs(config, nowhere, { "CF-Connecting-IP": "198.51.100.8" }),
      400,
      "HostNotReachable",
    );
    // the admin token is not limited, from the same IP
    await expectXrpcError(
      await crawlAs(config, nowhere, { ...ip, Authorization: ADMIN_HEADERS.Authorization }),
      400,
      "HostNotReachable",
    );
    // a wrong token is just not the admin's
    await expectXrpcError(
      await crawlAs(config, nowhere, { ...ip, Authorization: "Bearer wrong" }),
      429,
      "RateLimitExceeded",
    );
  });
});

describe("new hosts per day (NEW_HOSTS_PER_DAY)", () => {
  it("honours the configured cap, and the admin token skips it", async () => {
    const config = { ...readConfig(env), newHostsPerDay: 0 };
    const host = await newHost();
    const body = await expectXrpcError(
      await crawlAs(config, host.hostname),
      429,
      "RateLimitExceeded",
    );
    expect(body.message).toContain("at most 0 new hosts a day");
    const admin = await crawlAs(config, host.hostname, {
      Authorization: ADMIN_HEADERS.Authorization,
    });
    expect(admin.status).toBe(200);
    await until(
      "the relay subscribed",
      () => upstreamState(host),
      (s) => s.subscribers === 1,
    );
    // known now: anyone's requestCrawl of it is answered, cap or not
    expect((await crawlAs(config, host.hostname)).status).toBe(200);
  });

  it("does not count hosts an admin added against the cap", async () => {
    const directory = env.HOST_DIRECTORY.get(env.HOST_DIRECTORY.idFromName("per-day-admin-test"));
    for (const name of ["a", "b", "c"])
      expect(await directory.registerHost(`${name}.admin.example.com`, null)).toMatchObject({
        created: true,
      });
    await directory.setBanned("banned.admin.example.com", true);
    expect(await directory.registerHost("d.example.com", 1)).toMatchObject({ created: true });
    expect(await directory.registerHost("e.example.com", 1)).toEqual({
      kind: "tooManyNewHosts",
      maxNewHostsPerDay: 1,
    });
  });

  it("counts hosts of a directory written before the admin column as public ones", async () => {
    // a stub does not outlive abortAllDurableObjects: one per use
    const directory = () =>
      env.HOST_DIRECTORY.get(env.HOST_DIRECTORY.idFromName("per-day-migration-test"));
    await directory().registerHost("old.example.com", 5);
    await runInDurableObject(directory(), (_instance, state) => {
      state.storage.sql.exec("ALTER TABLE host_directory DROP COLUMN added_by_admin");
    });
    await abortAllDurableObjects();
    // started again on the earlier layout: the column is added, the old host still counts
    expect(await directory().registerHost("new.example.com", 1)).toEqual({
      kind: "tooManyNewHosts",
      maxNewHostsPerDay: 1,
    });
    expect(await directory().registerHost("admin.example.com", null)).toMatchObject({
      created: true,
    });
    expect(await directory().registerHost("new.example.com", 2)).toMatchObject({ created: true });
  });
});
