import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type Config, readConfig } from "../../src/config";
import { REGIONS, type Region } from "../../src/fanout/regions";
import { meterSnapshot, resetMeter } from "../../src/metering/meter";
import { fanoutStub, sequencerStub } from "../../src/stubs";
import { route } from "../../src/xrpc/router";
import {
  appendEvents,
  type Consumer,
  connect,
  connectToFanout,
  consumerFromUpgrade,
  expectContiguous,
  RELAY,
  seqs,
} from "./support";

// Regional fan-out (fanout/regions.ts, docs/architecture.md): the Worker picks the consumer's
// region from request.cf (or ?region=), the Sequencer feeds one head Fanout per region with
// consumers, and each head forwards to its region's other shards. The Worker runs here with a
// configuration that enables every region (the project's bindings keep regions off, as the
// other test files expect); the Fanouts and the Sequencer are the real objects.

const regional: Config = { ...readConfig(env), fanoutRegions: [...REGIONS], fanoutShards: 3 };

function subscribeRequest(query: string, cf?: Record<string, unknown>): Request {
  return new Request(`${RELAY}/xrpc/com.atproto.sync.subscribeRepos${query}`, {
    headers: { Upgrade: "websocket" },
    ...(cf ? { cf } : {}),
  });
}

/** Connects a consumer through the Worker's router, with the regional configuration. */
async function connectFrom(
  cf: Record<string, unknown> | undefined,
  query = "",
  config: Config = regional,
): Promise<Consumer> {
  return consumerFromUpgrade(await route(subscribeRequest(query, cf), env, config));
}

/** Sequencer deliveries (session calls and plain calls) and head forwards since resetMeter. */
function deliveryCounts(): { deliveries: number; forwards: number } {
  const calls = meterSnapshot().calls;
  return {
    deliveries: (calls["Fanout.session.deliver"] ?? 0) + (calls["Fanout.deliver"] ?? 0),
    forwards: (calls["Fanout.forwardSession.forward"] ?? 0) + (calls["Fanout.forward"] ?? 0),
  };
}

async function settled(): Promise<void> {
  await new Promise((r) => setTimeout(r, 50));
}

describe("regional fan-out", () => {
  it("delivers each batch once per region with consumers, and every consumer gets every event once, in order", async () => {
    const regions: { region: Region; cf: Record<string, unknown> }[] = [
      { region: "weur", cf: { continent: "EU", country: "FR" } },
      { region: "apac", cf: { continent: "AS", country: "JP" } },
      { region: "sam", cf: { continent: "SA", country: "BR" } },
    ];
    const consumers: Consumer[] = [];
    for (const { region, cf } of regions) {
      // two through the Worker (a random shard of the region each), and one on each non-head
      // shard, so every region's head has shards to forward to
      consumers.push(await connectFrom(cf), await connectFrom(cf));
      consumers.push(await connectToFanout(`fanout-${region}-1`));
      consumers.push(await connectToFanout(`fanout-${region}-2`));
    }
    // a first batch reaches everyone: every Fanout is registered and fed from here on
    const warmUp = await appendEvents(1, "regional.test", 200);
    const first = warmUp.firstSeq as number;
    await Promise.all(consumers.map((c) => c.waitFor((r) => seqs(r).includes(first))));
    await settled();

    resetMeter();
    const batches = 10;
    let last = first;
    for (let i = 0; i < batches; i++) {
      last = (await appendEvents(2, "regional.test", 200)).lastSeq as number;
      // longer than FANOUT_DELIVERY_INTERVAL_MS: one delivery per batch per region
      await new Promise((r) => setTimeout(r, 150));
    }
    await Promise.all(consumers.map((c) => c.waitFor((r) => seqs(r).includes(last))));
    await settled();

    const { deliveries, forwards } = deliveryCounts();
    // 12 consumers on 9 shards in 3 regions: the Sequencer delivers 3 times per batch (one
    // region head each); without the tree it would be once per shard with consumers (9)
    expect(deliveries).toBe(regions.length * batches);
    // each head forwards to its two other shards
    expect(forwards).toBe(regions.length * 2 * batches);
    for (const consumer of consumers) expectContiguous(seqs(consumer.received), first, last);

    // the admin view lists the three regions, their shards and every consumer's cursor
    const res = await SELF.fetch(`${RELAY}/admin/fanout`, {
      headers: { Authorization: "Bearer test-admin-token" },
    });
    expect(res.status).toBe(200);
    const view = (await res.json()) as {
      headSeq: number;
      regions: {
        region: string;
        consumers: number;
        shards: {
          name: string;
          shard: number;
          head: boolean;
          consumers: number;
          consumerCursors: { cursor: number; live: boolean; lag: number }[];
        }[];
      }[];
    };
    const listed = view.regions.filter((r) => r.consumers > 0);
    expect(listed.map((r) => r.region).sort()).toEqual(["apac", "sam", "weur"]);
    for (const region of listed) {
      expect(region.consumers).toBe(4);
      const names = region.shards.map((s) => s.name);
      expect(names).toContain(`fanout-${region.region}-1`);
      expect(names).toContain(`fanout-${region.region}-2`);
      expect(region.shards.find((s) => s.head)?.name).toBe(`fanout-${region.region}-0`);
      const cursors = region.shards.flatMap((s) => s.consumerCursors);
      expect(cursors).toHaveLength(4);
      for (const c of cursors) expect(c).toEqual({ cursor: last, live: true, lag: 0 });
    }
    for (const consumer of consumers) consumer.ws.close();
  });

  it("sends a request from each continent to its region's Fanout", async () => {
    const cases: { cf: Record<string, unknown>; region: Region }[] = [
      { cf: { continent: "NA", country: "US", longitude: "-122.42" }, region: "wnam" },
      { cf: { continent: "NA", country: "US", longitude: "-77.04" }, region: "enam" },
      { cf: { continent: "SA", country: "AR" }, region: "sam" },
      { cf: { continent: "EU", country: "GB" }, region: "weur" },
      { cf: { continent: "EU", country: "RO" }, region: "eeur" },
      { cf: { continent: "AS", country: "SG" }, region: "apac" },
      { cf: { continent: "AS", country: "QA" }, region: "me" },
      { cf: { continent: "OC", country: "NZ" }, region: "oc" },
      { cf: { continent: "AF", country: "KE" }, region: "afr" },
    ];
    const oneShard: Config = { ...regional, fanoutShards: 1 };
    for (const { cf, region } of cases) {
      const name = `fanout-${region}-0`;
      const before = (await fanoutStub(env, name).stats()).consumers;
      const consumer = await connectFrom(cf, "", oneShard);
      expect((await fanoutStub(env, name).stats()).consumers, region).toBe(before + 1);
      consumer.ws.close();
    }
    // a region that is not enabled: the nearest enabled one
    const fewer: Config = { ...oneShard, fanoutRegions: ["enam", "eeur"] };
    const before = (await fanoutStub(env, "fanout-eeur-0").stats()).consumers;
    const consumer = await connectFrom({ continent: "EU", country: "ES" }, "", fewer);
    expect((await fanoutStub(env, "fanout-eeur-0").stats()).consumers).toBe(before + 1);
    consumer.ws.close();
  });

  it("takes ?region= over the request's location, and refuses a region that is not enabled", async () => {
    const oneShard: Config = { ...regional, fanoutShards: 1 };
    const before = (await fanoutStub(env, "fanout-oc-0").stats()).consumers;
    const consumer = await connectFrom({ continent: "EU" }, "?region=oc", oneShard);
    expect((await fanoutStub(env, "fanout-oc-0").stats()).consumers).toBe(before + 1);
    consumer.ws.close();

    for (const [query, config] of [
      ["?region=mars", regional],
      ["?region=apac", { ...regional, fanoutRegions: ["weur"] }],
      // regions off (the project's default): there is no region to ask for
      ["?region=weur", readConfig(env)],
    ] as const) {
      const res = await route(subscribeRequest(query), env, config as Config);
      expect(res.status, query).toBe(400);
      expect(await res.json()).toMatchObject({ error: "InvalidRequest" });
    }
  });

  it("replays by cursor on a region's non-head shard, then goes live through the head's forwards", async () => {
    const before = await appendEvents(5, "regional-replay.test", 200);
    const from = (before.firstSeq as number) - 1;
    const consumer = await connectToFanout("fanout-afr-2", from);
    await consumer.waitFor((r) => seqs(r).includes(before.lastSeq as number));
    const after = await appendEvents(3, "regional-replay.test", 200);
    await consumer.waitFor((r) => seqs(r).includes(after.lastSeq as number));
    expectContiguous(seqs(consumer.received), from + 1, after.lastSeq as number);
    expect(await sequencerStub(env).listFanouts()).toContain("fanout-afr-0");
    expect(await sequencerStub(env).listFanouts()).not.toContain("fanout-afr-2");
    consumer.ws.close();
  });

  it("a region head that restarts keeps forwarding to its shards (its shard set is stored)", async () => {
    const consumers = [
      await connectToFanout("fanout-eeur-1"),
      await connectToFanout("fanout-eeur-2"),
    ];
    const first = await appendEvents(3, "regional-restart.test", 200);
    await Promise.all(consumers.map((c) => c.waitFor((r) => seqs(r).includes(first.lastSeq!))));
    // as an eviction or a deploy would: every stub and session to it breaks
    await runInDurableObject(fanoutStub(env, "fanout-eeur-0"), (_instance, state) => {
      state.abort("restarted by the test");
    }).catch(() => {});
    let last = first.lastSeq!;
    for (let i = 0; i < 3; i++) {
      last = (await appendEvents(2, "regional-restart.test", 200)).lastSeq!;
      await new Promise((r) => setTimeout(r, 100));
    }
    // well within the shards' 30 s watchdog: the new head instance forwards on its own
    await Promise.all(consumers.map((c) => c.waitFor((r) => seqs(r).includes(last), 10_000)));
    for (const consumer of consumers)
      expectContiguous(seqs(consumer.received), first.firstSeq!, last);
    expect((await fanoutStub(env, "fanout-eeur-0").stats()).forwardsTo).toBe(2);
    for (const consumer of consumers) consumer.ws.close();
  });

  it("with regions off, consumers land on the global shards as before, and /admin/fanout lists them as one region", async () => {
    const consumer = await connect();
    const appended = await appendEvents(1, "regional-global.test", 200);
    await consumer.waitFor((r) => seqs(r).includes(appended.lastSeq!));
    const res = await SELF.fetch(`${RELAY}/admin/fanout`, {
      headers: { Authorization: "Bearer test-admin-token" },
    });
    const view = (await res.json()) as {
      enabledRegions: string[];
      regions: { region: string; consumers: number; shards: { name: string; shard: number }[] }[];
    };
    expect(view.enabledRegions).toEqual([]);
    const global = view.regions.find((r) => r.region === "global");
    expect(global?.consumers).toBe(1);
    const withConsumer = global?.shards.filter((s) => /^fanout-\d$/.test(s.name)) ?? [];
    expect(withConsumer.length).toBeGreaterThan(0);
    expect(withConsumer.every((s) => s.name === `fanout-${s.shard}`)).toBe(true);
    consumer.ws.close();
    const unauthorized = await SELF.fetch(`${RELAY}/admin/fanout`);
    expect(unauthorized.status).toBe(401);
  });
});
