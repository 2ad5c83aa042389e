import { IdResolver } from "@atproto/identity";
import { type Event, Firehose, MemoryRunner } from "@atproto/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateXrpcOutput } from "../../src/protocol/lexicon";
import { runActivity } from "../support/activity";
import { type PdsHost, type PdsNetwork, restartPds, startPdsNetwork } from "../support/pds-network";
import { type RelayProcess, requestCrawl, startRelay } from "../support/relay-process";
import { type RecordedEvent, recordStream, type StreamRecorder } from "../support/stream-recorder";

// The whole relay against real software: two reference PDS hosts and a PLC on loopback feed
// freehose under `wrangler dev`; a raw recorder and @atproto/sync's Firehose (which verifies
// every commit against the DID documents in the PLC) read what freehose serves.

const SUBSCRIBE = "/xrpc/com.atproto.sync.subscribeRepos";

let network: PdsNetwork;
let relay: RelayProcess;
let relayStream: StreamRecorder;
const pdsStreams = new Map<string, StreamRecorder>();
const pdsEventsByHost = new Map<string, RecordedEvent[]>();
let firehose: Firehose;
const verified: Event[] = [];
const verificationErrors: string[] = [];

function subscribePds(host: PdsHost, cursor?: number): StreamRecorder {
  const recorder = recordStream(
    `${host.url.replace("http", "ws")}${SUBSCRIBE}${cursor === undefined ? "" : `?cursor=${cursor}`}`,
  );
  pdsStreams.set(host.hostname, recorder);
  const all = pdsEventsByHost.get(host.hostname) ?? [];
  pdsEventsByHost.set(host.hostname, all);
  // keep every event a PDS ever emitted while we watched, across reconnects
  const push = recorder.events.push.bind(recorder.events);
  recorder.events.push = (...items: RecordedEvent[]) => {
    all.push(...items.filter((e) => e.seq !== null));
    return push(...items);
  };
  return recorder;
}

function expectedKeys(): string[] {
  return [...pdsEventsByHost.values()].flat().map((e) => e.key);
}

function relayKeys(events: RecordedEvent[]): string[] {
  return events.filter((e) => e.seq !== null).map((e) => e.key);
}

function multisetDiff(
  expected: string[],
  actual: string[],
): { missing: string[]; extra: string[] } {
  const counts = new Map<string, number>();
  for (const k of expected) counts.set(k, (counts.get(k) ?? 0) + 1);
  const extra: string[] = [];
  for (const k of actual) {
    const n = counts.get(k) ?? 0;
    if (n === 0) extra.push(k);
    else counts.set(k, n - 1);
  }
  const missing = [...counts].flatMap(([k, n]) => Array.from({ length: n }, () => k));
  return { missing, extra };
}

async function waitForAll(
  recorder: StreamRecorder,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  await recorder.waitFor(
    (events) => multisetDiff(expectedKeys(), relayKeys(events)).missing.length === 0,
    timeoutMs,
    `${what}: ${multisetDiff(expectedKeys(), relayKeys(recorder.events)).missing.slice(0, 3).join("; ")}`,
  );
}

function expectExactlyOnceInOrder(events: RecordedEvent[]): void {
  const { missing, extra } = multisetDiff(expectedKeys(), relayKeys(events));
  expect({
    missing: missing.length,
    extra: extra.length,
    sampleMissing: missing.slice(0, 3),
    sampleExtra: extra.slice(0, 3),
  }).toEqual({
    missing: 0,
    extra: 0,
    sampleMissing: [],
    sampleExtra: [],
  });
  const seqs = events.filter((e) => e.seq !== null).map((e) => e.seq as number);
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i] !== (seqs[i - 1] as number) + 1)
      throw new Error(`relay seqs not contiguous at ${i}: ${seqs[i - 1]} then ${seqs[i]}`);
  }
  // per-repo order as each PDS emitted it
  const order = (list: RecordedEvent[]) => {
    const byDid = new Map<string, string[]>();
    for (const e of list) {
      const did = e.key.split(" ")[1] as string;
      byDid.set(did, [...(byDid.get(did) ?? []), e.key]);
    }
    return byDid;
  };
  const relayOrder = order(events.filter((e) => e.seq !== null));
  for (const [did, keys] of order([...pdsEventsByHost.values()].flat())) {
    expect(relayOrder.get(did), `order of ${did}`).toEqual(keys);
  }
}

async function settle(ms = 1500): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

beforeAll(async () => {
  network = await startPdsNetwork({ pdsCount: 2, accountsPerPds: 3 });
  relay = await startRelay({ plcUrl: network.plcUrl, vars: { HOST_REPORT_INTERVAL_SECONDS: "3" } });
  for (const host of network.hosts) {
    await subscribePds(host).ready;
    const res = await requestCrawl(relay.url, host.hostname);
    expect(res.status, await res.text()).toBe(200);
  }
  relayStream = recordStream(`${relay.wsUrl}${SUBSCRIBE}?cursor=0`);
  await relayStream.ready;
  firehose = new Firehose({
    idResolver: new IdResolver({ plcUrl: network.plcUrl }),
    service: relay.wsUrl,
    runner: new MemoryRunner({ startCursor: 0 }),
    unauthenticatedHandles: true,
    handleEvent: (evt) => {
      verified.push(evt);
    },
    onError: (err) => {
      verificationErrors.push(`${err.name}: ${err.message}`);
    },
  });
  void firehose.start();
}, 180_000);

afterAll(async () => {
  await firehose?.destroy();
  relayStream?.close();
  for (const s of pdsStreams.values()) s.close();
  await relay?.stop();
  await network?.close();
});

describe("freehose end to end", () => {
  it("relays every event of both hosts exactly once and in order; @atproto/sync verifies all of it", async () => {
    const counts = await runActivity(network, { actions: 80, seed: 7, rare: true });
    await settle();
    const expected = expectedKeys();
    expect(expected.length).toBeGreaterThanOrEqual(80);
    await waitForAll(relayStream, "the relay stream to carry every PDS event");
    expectExactlyOnceInOrder(relayStream.events);
    const commits = relayStream.events.filter((e) => e.kind === "commit").length;
    await settle(2000);
    expect(verificationErrors, `verification errors after ${JSON.stringify(counts)}`).toEqual([]);
    const verifiedRevs = new Set(
      verified
        .filter((e) => e.event === "create" || e.event === "update" || e.event === "delete")
        .map((e) => ("rev" in e ? `${e.did} ${e.rev}` : "")),
    );
    expect(
      verifiedRevs.size,
      `commits verified by @atproto/sync (of ${commits} relayed)`,
    ).toBeGreaterThanOrEqual(commits - 1);
  });

  it("answers the host and repo endpoints as their lexicons define them", async () => {
    const get = async (path: string) => (await fetch(`${relay.url}/xrpc/${path}`)).json();
    const host = network.hosts[0] as PdsHost;
    const did = host.accounts[0]?.did as string;
    // the ingesters publish host and repo state every HOST_REPORT_INTERVAL_SECONDS (3 s here)
    const accounts = network.hosts.flatMap((h) => h.accounts).length;
    const deadline = Date.now() + 20_000;
    while (
      ((await get("com.atproto.sync.listRepos")) as { repos: unknown[] }).repos.length < accounts
    ) {
      if (Date.now() > deadline) break;
      await settle(250);
    }
    const outputs: [string, unknown][] = [
      ["com.atproto.sync.listHosts", await get("com.atproto.sync.listHosts")],
      [
        "com.atproto.sync.getHostStatus",
        await get(`com.atproto.sync.getHostStatus?hostname=${host.hostname}`),
      ],
      ["com.atproto.sync.listRepos", await get("com.atproto.sync.listRepos")],
      ["com.atproto.sync.getRepoStatus", await get(`com.atproto.sync.getRepoStatus?did=${did}`)],
      [
        "com.atproto.sync.getLatestCommit",
        await get(`com.atproto.sync.getLatestCommit?did=${did}`),
      ],
    ];
    for (const [nsid, output] of outputs)
      expect(
        () => validateXrpcOutput(nsid, output),
        `${nsid}: ${JSON.stringify(output)}`,
      ).not.toThrow();
    const repos = outputs[2]?.[1] as { repos: { did: string }[] };
    expect(repos.repos.length).toBe(network.hosts.flatMap((h) => h.accounts).length);
    expect(outputs[1]?.[1]).toMatchObject({
      hostname: host.hostname,
      status: "active",
      accountCount: host.accounts.length,
    });
  });

  it("a consumer that reconnects with cursor=N gets exactly the rest", async () => {
    const all = relayStream.events.filter((e) => e.seq !== null);
    const middle = all[Math.floor(all.length / 2)]?.seq as number;
    const head = all.at(-1)?.seq as number;
    const resumed = recordStream(`${relay.wsUrl}${SUBSCRIBE}?cursor=${middle}`);
    await resumed.waitFor(
      (events) => events.length >= head - middle,
      30_000,
      "the rest of the stream",
    );
    await settle(500);
    resumed.close();
    expect(resumed.events.map((e) => e.seq)).toEqual(
      Array.from({ length: head - middle }, (_, i) => middle + 1 + i),
    );
  });

  it("stopping and restarting the relay process loses nothing and duplicates nothing", async () => {
    relayStream.close();
    await relay.stop();
    // the PDS hosts keep writing while the relay is down
    await runActivity(network, { actions: 20, seed: 11 });
    relay = await startRelay({
      plcUrl: network.plcUrl,
      persistDir: relay.persistDir,
      vars: { HOST_REPORT_INTERVAL_SECONDS: "3" },
    });
    // a PDS pings its crawlers when it writes after a quiet spell; do the same
    for (const host of network.hosts)
      expect((await requestCrawl(relay.url, host.hostname)).status).toBe(200);
    await runActivity(network, { actions: 10, seed: 12 });
    await settle();
    relayStream = recordStream(`${relay.wsUrl}${SUBSCRIBE}?cursor=0`);
    await waitForAll(relayStream, "the restarted relay to catch up");
    await settle(1000);
    expectExactlyOnceInOrder(relayStream.events);
  });

  it("one PDS going down does not disturb the other, and its stream resumes where it left off", async () => {
    const [steady, flaky] = network.hosts as [PdsHost, PdsHost];
    const flakyStream = pdsStreams.get(flaky.hostname) as StreamRecorder;
    const lastFlakySeq = (pdsEventsByHost.get(flaky.hostname) ?? []).at(-1)?.seq ?? undefined;
    flakyStream.close();
    await flaky.pds.close();
    const before = relayStream.events.length;
    const onlySteady: PdsNetwork = { ...network, hosts: [steady] };
    await runActivity(onlySteady, { actions: 15, seed: 21 });
    await settle();
    await waitForAll(relayStream, "the steady host's events while the other is down");
    expect(relayStream.events.length).toBeGreaterThan(before);

    await restartPds(flaky, network.plcUrl);
    await subscribePds(flaky, lastFlakySeq).ready;
    await runActivity(network, { actions: 20, seed: 22 });
    await settle();
    await waitForAll(relayStream, "the restarted host's events", 90_000);
    await settle(1000);
    expectExactlyOnceInOrder(relayStream.events);
  });
});
