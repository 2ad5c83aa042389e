import { describe, expect, it } from "vitest";
import { crawl, ingester, newHost, until, upstreamState } from "./ingest-support";

// The upstream socket must reach the host that passed the hostname policy, and only it: a host
// that answers the subscribeRepos upgrade with a redirect could otherwise send the relay to any
// address or port (issue 10, item 13). Redirects are refused like any failed upgrade.

async function script(hostname: string, call: string): Promise<void> {
  const res = await fetch(`http://${hostname}/_script/${call}`, { method: "POST" });
  expect(res.status).toBe(200);
}

describe("upstream socket", () => {
  it("does not follow a redirect of the subscribeRepos upgrade", async () => {
    const redirecting = await newHost();
    const target = await newHost();
    await script(redirecting.hostname, `redirect-upgrade?to=${target.hostname}`);
    expect((await crawl(redirecting.hostname)).status).toBe(200);
    const report = await until(
      "the redirect to be refused",
      () => ingester(redirecting.hostname).getHost(redirecting.hostname),
      (r) => (r?.lastError ?? "").includes("302"),
    );
    expect(report?.connectedSinceMs).toBeNull();
    expect((await upstreamState(target)).subscribers).toBe(0);
  });
});
