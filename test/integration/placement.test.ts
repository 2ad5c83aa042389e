import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkRelayLog } from "../support/backlog-scenario";
import { requestCrawl } from "../support/relay-process";
import { type ScriptedRelay, startScriptedRelay } from "../support/scripted-relay";

// Automatic placement under load: a host whose sustained rate passes the threshold moves from
// its shard to an object of its own while it keeps writing, and nothing is lost, duplicated or
// reordered at the hand-over.

const ADMIN = "placement-test-token";

describe("automatic placement", () => {
  let net: ScriptedRelay;

  beforeAll(async () => {
    net = await startScriptedRelay({
      logLevel: "log",
      vars: {
        ADMIN_TOKEN: ADMIN,
        NEW_HOST_EVENTS_PER_SECOND: "100000",
        AUTO_PIN_EVENTS_PER_SECOND: "10",
        AUTO_PLACEMENT_WINDOW_SECONDS: "2",
      },
    });
  });

  afterAll(async () => {
    await net?.close();
  });

  it("a busy host moves to its own object mid-stream and every event arrives once, in order", async () => {
    const { host, relay } = net;
    const accounts = [];
    for (let i = 0; i < 5; i++) accounts.push(await host.addAccount());
    const frames = [];
    for (let i = 0; i < 600; i++) frames.push(await host.commitFrame(accounts[i % 5]!));
    expect((await requestCrawl(relay.url, host.hostname)).ok).toBe(true);
    // ~100 events/s for six seconds: several placement windows at ten times the threshold
    for (const make of frames) {
      host.push(make);
      await new Promise((r) => setTimeout(r, 10));
    }
    const deadline = Date.now() + 60_000;
    let entry: { pinned: boolean; ingester: string } | undefined;
    let seq = 0;
    while (Date.now() < deadline) {
      const hosts = (await (
        await fetch(`${relay.url}/admin/hosts`, { headers: { Authorization: `Bearer ${ADMIN}` } })
      ).json()) as { hosts: { hostname: string; pinned: boolean; ingester: string }[] };
      entry = hosts.hosts.find((h) => h.hostname === host.hostname);
      seq = ((await (await fetch(`${relay.url}/xrpc/_health`)).json()) as { seq: number }).seq;
      if (entry?.pinned && entry.ingester.startsWith("host:") && seq >= 600) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(entry).toMatchObject({ pinned: true, ingester: `host:${host.hostname}` });
    expect(relay.output()).toContain("busy host moves to its own object");
    expect(await checkRelayLog(relay.wsUrl, [host])).toEqual({
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      seqGaps: 0,
    });
  });
});
