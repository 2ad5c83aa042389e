import { describe, expect, it } from "vitest";
import { CrawlRateLimit } from "../../src/ingest/crawl-rate-limit";
import { hostLimitsFor, isTrustedHostname } from "../../src/ingest/host-limits";

describe("trusted hostnames (TRUSTED_HOST_SUFFIXES)", () => {
  it.each([
    ["pds.host.example.com", [".example.com"], true],
    ["example.com", [".example.com"], false],
    ["badexample.com", [".example.com"], false],
    ["badexample.com", ["example.com"], false],
    ["example.com", ["example.com"], true],
    ["pds.example.com", ["example.com"], true],
    ["evil.com", ["good.com"], false],
    ["pds.host.example.com", [".good.com", "pds.host.example.com"], true],
    ["morel.us-east.host.bsky.network", [".host.bsky.network"], true],
    ["host.bsky.network.evil.com", [".host.bsky.network"], false],
    ["PDS.Example.COM", [".example.com"], true],
    ["pds.example.com", [".EXAMPLE.com"], true],
    ["localhost:2583", ["localhost"], true],
    ["anything.example.com", [], false],
  ] as const)("%s under %j: %s", (hostname, suffixes, trusted) => {
    expect(isTrustedHostname(hostname, suffixes)).toBe(trusted);
  });
});

describe("a host's limits", () => {
  const policy = {
    newHost: { eventsPerSecond: 50, maxAccounts: 100 },
    trusted: { eventsPerSecond: 5000, maxAccounts: 10_000_000 },
    trustedSuffixes: [".host.bsky.network"],
  };

  it("are the trusted ones under a trusted suffix, else the new-host ones", () => {
    expect(hostLimitsFor("a.host.bsky.network", null, policy)).toEqual(policy.trusted);
    expect(hostLimitsFor("pds.example.com", null, policy)).toEqual(policy.newHost);
  });

  it("are an admin's when an admin set them, trusted or not", () => {
    const admin = { eventsPerSecond: 7, maxAccounts: 3 };
    expect(hostLimitsFor("a.host.bsky.network", admin, policy)).toEqual(admin);
    expect(hostLimitsFor("pds.example.com", admin, policy)).toEqual(admin);
  });
});

describe("requestCrawl calls per caller per minute", () => {
  it("admits `limit` calls a minute per caller, then says when to retry", () => {
    const limit = new CrawlRateLimit();
    const t0 = 1_000_000;
    expect(limit.take("a", 2, t0)).toEqual({ ok: true });
    expect(limit.take("a", 2, t0 + 1_000)).toEqual({ ok: true });
    expect(limit.take("a", 2, t0 + 15_000)).toEqual({
      ok: false,
      retryAfterSeconds: 45,
      firstRefusal: true,
    });
    expect(limit.take("a", 2, t0 + 59_500)).toEqual({
      ok: false,
      retryAfterSeconds: 1,
      firstRefusal: false,
    });
    // another caller has its own count
    expect(limit.take("b", 2, t0 + 15_000)).toEqual({ ok: true });
    // a new minute
    expect(limit.take("a", 2, t0 + 60_000)).toEqual({ ok: true });
  });

  it("refuses everything with a limit of 0", () => {
    expect(new CrawlRateLimit().take("a", 0, 0)).toMatchObject({ ok: false, firstRefusal: true });
  });

  it("still limits callers after a flood of distinct callers", () => {
    const limit = new CrawlRateLimit();
    expect(limit.take("steady", 1, 0)).toEqual({ ok: true });
    for (let i = 0; i < 20_000; i++) limit.take(`passer-${i}`, 1, 61_000 + i);
    expect(limit.take("fresh", 1, 100_000)).toEqual({ ok: true });
    expect(limit.take("fresh", 1, 100_001)).toMatchObject({ ok: false });
  });
});
