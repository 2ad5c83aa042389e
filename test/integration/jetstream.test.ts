import { JetstreamSubscription } from "@atcute/jetstream";
import { Jetstream } from "@skyware/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { replay } from "../../src/client";
import {
  type Account,
  type PdsNetwork,
  startPdsNetwork,
  watchRelayConnections,
} from "../support/pds-network";
import { type RelayProcess, requestCrawl, startRelay } from "../support/relay-process";
import { waitUntil } from "../support/wait";

// `GET /subscribe` read by the two Jetstream client libraries people use, unmodified:
// @atcute/jetstream (connects with requireHello=true and a cursor, sends its filters in an
// options_update, validates every event's shape) and @skyware/jetstream (filters and cursor in
// the URL). A relay under `wrangler dev` that seals a segment every few events is fed by a
// reference PDS whose accounts post (with facets and an embed), like, follow, update a profile,
// delete a post, change a handle and deactivate/reactivate through the PDS's own API. Every record a client gets is compared
// with what the PDS serves for it (com.atproto.repo.getRecord). Last, the relay restarts under
// the libraries, which reconnect on their own with their last time_us as the cursor.

const POST = "app.bsky.feed.post";
const LIKE = "app.bsky.feed.like";
const FOLLOW = "app.bsky.graph.follow";
/** A segment every few events, so a cursor replay starts in sealed history. */
const RELAY_VARS = { SEGMENT_MAX_BYTES: "3000", SEGMENT_MAX_AGE_SECONDS: "1" };

/** A Jetstream message as it came off the socket (both libraries hand over the parsed JSON). */
type JetstreamMessage = {
  did: string;
  time_us: number;
  kind: "commit" | "identity" | "account";
  commit?: {
    rev: string;
    operation: "create" | "update" | "delete";
    collection: string;
    rkey: string;
    record?: Record<string, unknown>;
    cid?: string;
  };
  identity?: { did: string; handle?: string; seq: number; time: string };
  account?: { did: string; active: boolean; status?: string; seq: number; time: string };
};

type ClientOptions = {
  wantedCollections?: string[];
  wantedDids?: string[];
  cursor?: number;
  /** Let the library reconnect after a close (the others count a close as a failure). */
  reconnect?: boolean;
};

/** One library's connection: what it received, how often it (re)connected, and its errors. */
type Client = {
  name: string;
  messages: JetstreamMessage[];
  opens: number;
  closes: number;
  errors: string[];
  updateFilters(options: { wantedCollections?: string[]; wantedDids?: string[] }): void;
  close(): void;
};

/** Written upstream by the test, with the PDS's answer. */
type Written = { did: string; collection: string; rkey: string; cid: string; uri: string };

let network: PdsNetwork;
let relay: RelayProcess;
const clients: Client[] = [];
const written: Written[] = [];

function atcuteClient(name: string, options: ClientOptions): Client {
  const client: Client = {
    name: `@atcute ${name}`,
    messages: [],
    opens: 0,
    closes: 0,
    errors: [],
    updateFilters: (o) =>
      subscription.updateOptions(o as { wantedDids?: `did:${string}:${string}`[] }),
    close: () => void iterator.return?.(),
  };
  const subscription = new JetstreamSubscription({
    url: relay.wsUrl,
    ...(options.wantedCollections ? { wantedCollections: options.wantedCollections } : {}),
    ...(options.wantedDids
      ? { wantedDids: options.wantedDids as `did:${string}:${string}`[] }
      : {}),
    ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
    ws: { WebSocket, ...(options.reconnect ? {} : { maxRetries: 0 }) },
    onConnectionOpen: () => client.opens++,
    onConnectionClose: () => client.closes++,
    onConnectionError: (e) => client.errors.push(`connection: ${String(e.message)}`),
    // an event its schema refuses is dropped by the library: the relay sent a wrong shape
    onError: (err) => client.errors.push(`invalid event: ${String(err)}`),
  });
  const iterator = subscription[Symbol.asyncIterator]();
  void (async () => {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      client.messages.push(next.value as unknown as JetstreamMessage);
    }
  })();
  clients.push(client);
  return client;
}

function skywareClient(name: string, options: ClientOptions): Client {
  const jetstream = new Jetstream({
    endpoint: `${relay.wsUrl}/subscribe`,
    ws: WebSocket,
    ...(options.wantedCollections
      ? { wantedCollections: options.wantedCollections as `${string}.${string}.${string}`[] }
      : {}),
    ...(options.wantedDids ? { wantedDids: options.wantedDids } : {}),
    ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
  });
  const client: Client = {
    name: `@skyware ${name}`,
    messages: [],
    opens: 0,
    closes: 0,
    errors: [],
    updateFilters: (o) =>
      jetstream.updateOptions(o as { wantedCollections?: `${string}.${string}.${string}`[] }),
    close: () => jetstream.close(),
  };
  const push = (event: unknown) => client.messages.push(event as JetstreamMessage);
  jetstream.on("commit", push);
  jetstream.on("identity", push);
  jetstream.on("account", push);
  jetstream.on("open", () => client.opens++);
  jetstream.on("close", () => client.closes++);
  jetstream.on("error", (err: Error) => client.errors.push(String(err)));
  jetstream.start();
  clients.push(client);
  return client;
}

/** Both libraries with the same options. */
function bothClients(name: string, options: ClientOptions): Client[] {
  return [atcuteClient(name, options), skywareClient(name, options)];
}

function accounts(): Account[] {
  return network.hosts.flatMap((h) => h.accounts);
}

function account(i: number): Account {
  return accounts()[i] as Account;
}

function rkeyOf(uri: string): string {
  return uri.slice(uri.lastIndexOf("/") + 1);
}

let postCount = 0;

/** A post with a link facet and an external embed, so the record has nested objects and arrays. */
async function post(author: Account): Promise<Written> {
  postCount++;
  const link = `https://example.com/${postCount}`;
  const text = `post ${postCount} by ${author.handle}: ${link} ✓`;
  const byteStart = Buffer.byteLength(text.slice(0, text.indexOf(link)));
  const res = await author.agent.post({
    text,
    createdAt: new Date().toISOString(),
    langs: ["en"],
    facets: [
      {
        index: { byteStart, byteEnd: byteStart + Buffer.byteLength(link) },
        features: [{ $type: "app.bsky.richtext.facet#link", uri: link }],
      },
    ],
    embed: {
      $type: "app.bsky.embed.external",
      external: { uri: link, title: `title ${postCount}`, description: "an external embed" },
    },
  });
  const w = {
    did: author.did,
    collection: POST,
    rkey: rkeyOf(res.uri),
    cid: res.cid,
    uri: res.uri,
  };
  written.push(w);
  return w;
}

async function like(actor: Account, target: Written): Promise<Written> {
  const res = await actor.agent.like(target.uri, target.cid);
  const w = { did: actor.did, collection: LIKE, rkey: rkeyOf(res.uri), cid: res.cid, uri: res.uri };
  written.push(w);
  return w;
}

async function follow(actor: Account, subject: Account): Promise<Written> {
  const res = await actor.agent.follow(subject.did);
  const w = {
    did: actor.did,
    collection: FOLLOW,
    rkey: rkeyOf(res.uri),
    cid: res.cid,
    uri: res.uri,
  };
  written.push(w);
  return w;
}

function creates(client: Client): JetstreamMessage[] {
  return client.messages.filter((m) => m.kind === "commit" && m.commit?.operation === "create");
}

function keyOf(w: { did: string; collection: string; rkey: string }): string {
  return `${w.did}/${w.collection}/${w.rkey}`;
}

function messageKey(m: JetstreamMessage): string {
  return `${m.did}/${m.commit?.collection}/${m.commit?.rkey}`;
}

/** Waits until `client` has every one of `expected` among its creates. */
async function waitForCreates(client: Client, expected: Written[], timeoutMs = 30_000) {
  const missing = () => {
    const got = new Set(creates(client).map(messageKey));
    return expected.filter((w) => !got.has(keyOf(w))).map(keyOf);
  };
  const ok = await waitUntil(() => missing().length === 0, timeoutMs);
  expect(ok, `${client.name} is missing ${missing().slice(0, 3).join(", ")}`).toBe(true);
}

/** Each of `expected` arrives exactly once (as a create), in the order it was written. */
function expectExactlyOnceInOrder(client: Client, expected: Written[]): void {
  const wanted = new Set(expected.map(keyOf));
  const got = creates(client)
    .map(messageKey)
    .filter((k) => wanted.has(k));
  expect(got, `${client.name}: each once, in the order written`).toEqual(expected.map(keyOf));
}

/** The record of every create is the PDS's own (getRecord), and so is its CID. */
async function expectRecordsAsOnPds(client: Client, expected: Written[]): Promise<void> {
  const byKey = new Map(creates(client).map((m) => [messageKey(m), m]));
  for (const w of expected) {
    const m = byKey.get(keyOf(w));
    const author = accounts().find((a) => a.did === w.did) as Account;
    const onPds = await author.agent.com.atproto.repo.getRecord({
      repo: w.did,
      collection: w.collection,
      rkey: w.rkey,
    });
    expect(m?.commit?.record, `${client.name}: record of ${keyOf(w)}`).toEqual(onPds.data.value);
    expect(m?.commit?.cid, `${client.name}: cid of ${keyOf(w)}`).toBe(onPds.data.cid);
    expect(m?.commit?.cid).toBe(w.cid);
  }
}

function expectTimesNeverGoBack(client: Client): void {
  const times = client.messages.map((m) => m.time_us);
  for (let i = 1; i < times.length; i++)
    expect(times[i], `${client.name}: time_us at ${i}`).toBeGreaterThanOrEqual(
      times[i - 1] as number,
    );
}

async function allOpen(list: Client[]): Promise<void> {
  const ok = await waitUntil(() => list.every((c) => c.opens > 0), 20_000);
  expect(ok, `clients not open: ${list.filter((c) => c.opens === 0).map((c) => c.name)}`).toBe(
    true,
  );
}

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function headSeq(): Promise<number> {
  const res = await fetch(`${relay.url}/xrpc/_health`);
  return res.ok ? ((await res.json()) as { seq: number }).seq : 0;
}

beforeAll(async () => {
  // one host: its accounts' writes are sequenced by the relay in the order they were made
  network = await startPdsNetwork({ pdsCount: 1, accountsPerPds: 3 });
  relay = await startRelay({
    plcUrl: network.plcUrl,
    // a segment every few events, so a cursor replay starts in sealed history
    vars: RELAY_VARS,
  });
  const host = network.hosts[0];
  if (!host) throw new Error("no PDS");
  const watch = watchRelayConnections(host);
  const res = await requestCrawl(relay.url, host.hostname);
  expect(res.status, await res.text()).toBe(200);
  expect(await waitUntil(() => watch.connections() > 0, 30_000), "relay subscribed").toBe(true);
  watch.close();
  // the relay sequences what the host writes from now on
  for (let i = 0; i < 20 && (await headSeq()) === 0; i++) {
    await post(account(0));
    await settle(500);
  }
  expect(await headSeq()).toBeGreaterThan(0);
}, 180_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await relay?.stop();
  await network?.close();
});

describe("Jetstream client libraries against /subscribe", () => {
  // live clients of the first test, kept for the replay test
  let cursorUs = 0;
  /** How many of `written` were written (and sequenced, seconds ago) before `cursorUs`. */
  let writtenBeforeCursor = 0;
  const live: Written[] = [];

  it("filters by collection, DID and wildcard, passes identity and account events, and applies options_update without reconnecting", async () => {
    const a = account(0);
    const b = account(1);
    const c = account(2);
    const posts = bothClients("posts", { wantedCollections: [POST] });
    const byDid = bothClients("did", { wantedDids: [a.did] });
    const wildcard = bothClients("wildcard", { wantedCollections: ["app.bsky.feed.*"] });
    const updated = bothClients("options_update", { wantedCollections: [FOLLOW] });
    await allOpen(clients);
    // @atcute waits for its hello; give every socket time to be positioned at the Fanout
    await settle(1500);
    cursorUs = Date.now() * 1000;
    writtenBeforeCursor = written.length;

    // first half: follows are wanted by the options_update clients, likes are not
    const firstHalf: Written[] = [];
    for (const [actor, other] of [
      [a, b],
      [b, c],
      [c, a],
    ] as const) {
      const p = await post(actor);
      firstHalf.push(p, await like(other, p), await follow(actor, other));
    }
    // an identity event (handle change) and account events (deactivate, reactivate) of b
    const newHandle = `renamed-${Date.now() % 100000}.test`;
    await b.agent.com.atproto.identity.updateHandle({ handle: newHandle });
    b.handle = newHandle;
    await b.agent.com.atproto.server.deactivateAccount({});
    await settle(100);
    await b.agent.com.atproto.server.activateAccount();
    // and the same for a, whose DID the DID filter wants
    await a.agent.com.atproto.server.deactivateAccount({});
    await settle(100);
    await a.agent.com.atproto.server.activateAccount();
    // an update (a's profile, created then changed) and a delete (a post of a's)
    await a.agent.upsertProfile(() => ({ displayName: "first name" }));
    await a.agent.upsertProfile((existing) => ({
      ...existing,
      displayName: "second name",
      description: "updated",
    }));
    const doomed = await post(a);
    await a.agent.deletePost(doomed.uri);
    const firstFollows = firstHalf.filter((w) => w.collection === FOLLOW);
    for (const client of updated) await waitForCreates(client, firstFollows);

    for (const client of updated) client.updateFilters({ wantedCollections: [LIKE] });
    // the update reaches the Fanout before the next writes
    await settle(1500);
    const secondHalf: Written[] = [];
    for (const [actor, other] of [
      [a, c],
      [c, b],
      [b, a],
    ] as const) {
      const p = await post(actor);
      secondHalf.push(p, await like(other, p), await follow(actor, other));
    }
    const all = [...firstHalf, ...secondHalf];
    live.push(...all);
    const ofKind = (list: Written[], collection: string) =>
      list.filter((w) => w.collection === collection);
    const newPosts = ofKind(all, POST);
    const newLikes = ofKind(all, LIKE);

    // collection filter: every new post once, in order, with the PDS's record; nothing else but
    // identity and account events (which pass a collection filter, as on Jetstream)
    for (const client of posts) {
      await waitForCreates(client, newPosts);
      expectExactlyOnceInOrder(client, newPosts);
      await expectRecordsAsOnPds(client, newPosts);
      const commits = client.messages.filter((m) => m.kind === "commit");
      expect(new Set(commits.map((m) => m.commit?.collection))).toEqual(new Set([POST]));
      const ok = await waitUntil(
        () =>
          client.messages.some((m) => m.kind === "identity" && m.did === b.did) &&
          client.messages.filter((m) => m.kind === "account" && m.did === b.did).length >= 2,
        15_000,
      );
      expect(ok, `${client.name}: identity and account events of ${b.did}`).toBe(true);
      const identity = client.messages.find((m) => m.kind === "identity" && m.did === b.did);
      expect(identity?.identity?.did).toBe(b.did);
      expect(identity?.identity?.handle).toBe(newHandle);
      const activity = client.messages
        .filter((m) => m.kind === "account" && m.did === b.did)
        .map((m) => m.account?.active);
      expect(activity, `${client.name}: b deactivated then active again`).toEqual([false, true]);
      // a delete: the op without record or cid, after the create
      const doomedOps = client.messages
        .filter((m) => m.kind === "commit" && messageKey(m) === keyOf(doomed))
        .map((m) => m.commit);
      expect(doomedOps.map((op) => op?.operation)).toEqual(["create", "delete"]);
      expect(doomedOps[1]?.record).toBeUndefined();
      expect(doomedOps[1]?.cid).toBeUndefined();
    }

    // DID filter: all of a's writes and account events, nothing of anyone else
    const ofA = all.filter((w) => w.did === a.did);
    for (const client of byDid) {
      await waitForCreates(client, ofA);
      expectExactlyOnceInOrder(client, ofA);
      await expectRecordsAsOnPds(client, ofA);
      const ok = await waitUntil(
        () => client.messages.filter((m) => m.kind === "account").length >= 2,
        15_000,
      );
      expect(ok, `${client.name}: a's account events`).toBe(true);
      expect(new Set(client.messages.map((m) => m.did))).toEqual(new Set([a.did]));
      // the profile's create, then its update, whose record is the PDS's current one
      const profileOps = client.messages
        .filter((m) => m.commit?.collection === "app.bsky.actor.profile")
        .map((m) => m.commit);
      expect(profileOps.map((op) => [op?.operation, op?.rkey])).toEqual([
        ["create", "self"],
        ["update", "self"],
      ]);
      const profile = await a.agent.com.atproto.repo.getRecord({
        repo: a.did,
        collection: "app.bsky.actor.profile",
        rkey: "self",
      });
      expect(profileOps[0]?.record?.displayName).toBe("first name");
      expect(profileOps[1]?.record).toEqual(profile.data.value);
      expect(profileOps[1]?.cid).toBe(profile.data.cid);
    }

    // wildcard: posts and likes, no follows
    const feed = [...newPosts, ...newLikes].sort((x, y) => all.indexOf(x) - all.indexOf(y));
    for (const client of wildcard) {
      await waitForCreates(client, feed);
      expectExactlyOnceInOrder(client, feed);
      await expectRecordsAsOnPds(client, ofKind(all, LIKE));
      const collections = new Set(
        client.messages.filter((m) => m.kind === "commit").map((m) => m.commit?.collection),
      );
      expect(collections).toEqual(new Set([POST, LIKE]));
    }

    // options_update: follows before it, likes after it, on the same connection
    for (const client of updated) {
      const want = [...ofKind(firstHalf, FOLLOW), ...ofKind(secondHalf, LIKE)];
      await waitForCreates(client, want);
      expectExactlyOnceInOrder(client, want);
      const afterUpdate = new Set(secondHalf.map(keyOf));
      const unwanted = creates(client).filter((m) =>
        afterUpdate.has(messageKey(m))
          ? m.commit?.collection !== LIKE
          : m.commit?.collection !== FOLLOW,
      );
      expect(unwanted.map(messageKey), `${client.name}: outside its filter`).toEqual([]);
      expect(client.opens, `${client.name}: connections`).toBe(1);
    }

    for (const client of clients) {
      expect(client.errors, client.name).toEqual([]);
      expect(client.closes, `${client.name}: closed by the relay`).toBe(0);
      expectTimesNeverGoBack(client);
    }
  });

  it("replays from a time cursor across sealed segments, then goes live, each post once and in order", async () => {
    expect(cursorUs).toBeGreaterThan(0);
    // sealed history (R2 segments, read here over HTTP) holds posts written after the cursor
    const plan = (await (await fetch(`${relay.url}/segments?after=0`)).json()) as {
      segments: unknown[];
    };
    expect(plan.segments.length, "segments sealed").toBeGreaterThan(0);
    const sealed = new Set<string>();
    for await (const event of replay({
      service: relay.url,
      cursor: 0,
      WebSocket,
      historyOnly: true,
    }))
      if (event.type === "#commit" && event.source === "segment")
        for (const op of event.body.ops) sealed.add(`${event.body.repo}/${op.path}`);
    const livePosts = live.filter((w) => w.collection === POST);
    expect(
      livePosts.filter((w) => sealed.has(keyOf(w))).length,
      "posts after the cursor that are in sealed segments",
    ).toBeGreaterThan(0);

    const replaying = bothClients("cursor", { wantedCollections: [POST], cursor: cursorUs });
    await allOpen(replaying);
    const later: Written[] = [];
    for (let i = 0; i < 3; i++) later.push(await post(account(i)));
    const expected = [...live, ...later].filter((w) => w.collection === POST);
    const beforeCursor = new Set(
      written
        .slice(0, writtenBeforeCursor)
        .filter((w) => w.collection === POST)
        .map(keyOf),
    );
    expect(beforeCursor.size, "posts written before the cursor").toBeGreaterThan(0);
    for (const client of replaying) {
      await waitForCreates(client, expected);
      expectExactlyOnceInOrder(client, expected);
      await expectRecordsAsOnPds(client, expected);
      // the replay starts exactly at the cursor (docs/behaviours.md "Jetstream time_us"): no post
      // written before it, however recent, and no message timed before it
      const keys = creates(client).map(messageKey);
      expect(
        keys.filter((k) => beforeCursor.has(k)),
        `${client.name}: posts from before the cursor`,
      ).toEqual([]);
      expect(
        client.messages
          .filter((m) => m.time_us < cursorUs)
          .map((m) => `${m.kind} ${m.did} ${m.time_us}`),
        `${client.name}: messages timed before the cursor ${cursorUs}`,
      ).toEqual([]);
      const knownPosts = new Set(written.filter((w) => w.collection === POST).map(keyOf));
      expect(
        keys.filter((k) => !knownPosts.has(k)),
        `${client.name}: unknown posts`,
      ).toEqual([]);
      expect(new Set(keys).size, `${client.name}: duplicates`).toBe(keys.length);
      expect(client.errors, client.name).toEqual([]);
      expect(client.opens, `${client.name}: connections`).toBe(1);
      expectTimesNeverGoBack(client);
    }
  });

  it("reconnect after the relay restarts: both libraries resume from their last time_us and miss nothing", async () => {
    const resuming = bothClients("reconnect", { wantedCollections: [POST], reconnect: true });
    await allOpen(resuming);
    await settle(1500);
    const before: Written[] = [];
    for (let i = 0; i < 2; i++) before.push(await post(account(i)));
    for (const client of resuming) await waitForCreates(client, before);

    // a restart on the same state and port: each socket is closed, the libraries reconnect
    await relay.stop();
    relay = await startRelay({
      plcUrl: network.plcUrl,
      persistDir: relay.persistDir,
      port: relay.port,
      vars: RELAY_VARS,
    });
    const host = network.hosts[0];
    if (host) await requestCrawl(relay.url, host.hostname);
    // written while the libraries are still waiting to reconnect: their cursor must bring it
    const after: Written[] = [await post(account(2))];
    const reopened = await waitUntil(() => resuming.every((c) => c.opens >= 2), 60_000);
    expect(reopened, resuming.map((c) => `${c.name}: ${c.opens} opens`).join(", ")).toBe(true);
    for (let i = 0; i < 3; i++) after.push(await post(account(i)));
    for (const client of resuming) {
      await waitForCreates(client, [...before, ...after], 60_000);
      // the new posts once each, in order; of the older ones only the last seen comes again:
      // the libraries resume with its time_us, and a cursor includes the event at its time
      expectExactlyOnceInOrder(client, after);
      const keys = creates(client).map(messageKey);
      const repeated = before.filter((w) => keys.filter((k) => k === keyOf(w)).length > 1);
      expect(repeated.map(keyOf), `${client.name}: repeated after the reconnect`).toEqual(
        repeated.length === 0 ? [] : [keyOf(before.at(-1) as Written)],
      );
      await expectRecordsAsOnPds(client, after);
      // connection errors are expected while the relay is down: the libraries retry
      const errors = client.errors.filter((e) => !/ECONNREFUSED|^connection/.test(e));
      expect(errors, client.name).toEqual([]);
    }
  });
});
