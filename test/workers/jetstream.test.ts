import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  createDCtx,
  decompressUsingDict,
} from "../../node_modules/@bokuweb/zstd-wasm/dist/esm/simple/decompress_using_dict.js";
import { loadJetstreamZstd } from "../../src/jetstream/zstd";
import { JETSTREAM_ZSTD_DICTIONARY } from "../../src/jetstream/zstd-dictionary";
import { writeCar } from "../../src/protocol/car";
import { encodeDagCbor } from "../../src/protocol/cbor";
import { CID, cidForDagCbor } from "../../src/protocol/cid";
import { encodeFrame } from "../../src/protocol/frame";
import type { IngestEvent } from "../../src/sequence/hot-log";
import { sequencerStub } from "../../src/stubs";
import { RELAY, subscribeJetstream } from "./support";

// Jetstream's /subscribe served from the log: real commit frames (records in CAR blocks) are
// appended through the Sequencer as an ingester would, and consumers connect through the Worker.
// Storage is shared by the tests of this file: each uses its own rkeys and DIDs.

const ALICE = "did:plc:jetstreamalice0000000000";
const BOB = "did:plc:jetstreambob00000000000000";
const IMAGE = CID.parse("bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm");

type Op = {
  action: "create" | "update" | "delete";
  path: string;
  record?: Record<string, unknown>;
};

let upstream = 1;

function commit(did: string, ops: Op[]): IngestEvent {
  const blocks: [CID, Uint8Array][] = [];
  const repoOps = ops.map((op) => {
    if (!op.record) return { action: op.action, path: op.path, cid: null };
    const bytes = encodeDagCbor(op.record);
    const cid = cidForDagCbor(bytes);
    blocks.push([cid, bytes]);
    return { action: op.action, path: op.path, cid };
  });
  const seq = upstream++;
  const frame = encodeFrame({
    kind: "commit",
    body: {
      seq,
      rebase: false,
      tooBig: false,
      repo: did,
      commit: IMAGE,
      rev: `3l6jd7dvzeg${String(seq % 100).padStart(2, "2")}`,
      since: null,
      blocks: writeCar([IMAGE], blocks),
      ops: repoOps,
      blobs: [],
      time: new Date().toISOString(),
    },
  });
  return { host: "pds.test", upstreamSeq: seq, frame, did };
}

function identity(did: string): IngestEvent {
  const seq = upstream++;
  const frame = encodeFrame({
    kind: "identity",
    body: { seq, did, time: "2024-05-01T00:00:00.000Z", handle: "alice.test" },
  });
  return { host: "pds.test", upstreamSeq: seq, frame, did };
}

function post(text: string) {
  return {
    $type: "app.bsky.feed.post",
    text,
    createdAt: "2024-05-01T00:00:00.000Z",
    embed: {
      $type: "app.bsky.embed.images",
      images: [{ alt: "", image: { $type: "blob", ref: IMAGE, mimeType: "image/png", size: 3 } }],
    },
    tag: new Uint8Array([1, 2, 3]),
  };
}

function postJson(text: string) {
  return {
    $type: "app.bsky.feed.post",
    text,
    createdAt: "2024-05-01T00:00:00.000Z",
    embed: {
      $type: "app.bsky.embed.images",
      images: [
        {
          alt: "",
          image: {
            $type: "blob",
            ref: { $link: IMAGE.toString() },
            mimeType: "image/png",
            size: 3,
          },
        },
      ],
    },
    tag: { $bytes: "AQID" },
  };
}

const like = { $type: "app.bsky.feed.like", createdAt: "2024-05-01T00:00:00.000Z", subject: "x" };

async function append(events: IngestEvent[]) {
  await sequencerStub(env).appendBatch({ events });
}

type Message = Record<string, unknown> & {
  did: string;
  time_us: number;
  kind: string;
  commit?: Record<string, unknown>;
};

const subscribe = (query: string) => subscribeJetstream(query, (m) => m as Message);

const opsOf = (messages: Message[]) =>
  messages.map((m) =>
    m.kind === "commit"
      ? `${m.commit?.operation} ${m.commit?.collection}/${m.commit?.rkey}`
      : `${m.kind} ${m.did}`,
  );

describe("GET /subscribe parameters", () => {
  it.each(["wantedCollections=not%20an%20nsid", "wantedDids=did:nope", "cursor=yesterday"])(
    "%s is a 400 before the upgrade",
    async (query) => {
      const res = await SELF.fetch(`${RELAY}/subscribe?${query}`, {
        headers: { Upgrade: "websocket" },
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: "InvalidRequest" });
    },
  );
});

describe("GET /subscribe", () => {
  it("a collection filter gets exactly the matching ops, once, in order, with the record JSON", async () => {
    const consumer = await subscribe("wantedCollections=app.bsky.feed.post");
    await append([
      commit(ALICE, [
        { action: "create", path: "app.bsky.feed.post/a1", record: post("one") },
        { action: "create", path: "app.bsky.feed.like/a2", record: like },
      ]),
      identity(ALICE),
      commit(BOB, [{ action: "create", path: "app.bsky.graph.follow/b1", record: like }]),
    ]);
    await append([
      commit(BOB, [
        { action: "update", path: "app.bsky.feed.post/b2", record: post("two") },
        { action: "delete", path: "app.bsky.feed.post/a1" },
      ]),
    ]);
    await consumer.waitFor((r) => r.length >= 4);
    await new Promise((r) => setTimeout(r, 300));
    expect(opsOf(consumer.received)).toEqual([
      "create app.bsky.feed.post/a1",
      `identity ${ALICE}`,
      "update app.bsky.feed.post/b2",
      "delete app.bsky.feed.post/a1",
    ]);
    const [first, id, update, del] = consumer.received as [Message, Message, Message, Message];
    expect(first).toEqual({
      did: ALICE,
      time_us: expect.any(Number),
      kind: "commit",
      commit: {
        rev: expect.any(String),
        operation: "create",
        collection: "app.bsky.feed.post",
        rkey: "a1",
        record: postJson("one"),
        cid: cidForDagCbor(encodeDagCbor(post("one"))).toString(),
      },
    });
    expect(id).toMatchObject({
      kind: "identity",
      identity: { did: ALICE, handle: "alice.test", seq: expect.any(Number) },
    });
    expect(update.commit?.record).toEqual(postJson("two"));
    expect(del.commit).toEqual({
      rev: expect.any(String),
      operation: "delete",
      collection: "app.bsky.feed.post",
      rkey: "a1",
    });
    const times = consumer.received.map((m) => m.time_us);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(Math.abs((first.time_us as number) / 1000 - Date.now())).toBeLessThan(30_000);
    consumer.ws.close();
  });

  it("options_update changes the filter without reconnecting; an invalid one is answered and changes nothing", async () => {
    const consumer = await subscribe(`wantedCollections=app.bsky.feed.post&wantedDids=${ALICE}`);
    await append([
      commit(ALICE, [{ action: "create", path: "app.bsky.feed.post/c1", record: post("c1") }]),
      commit(BOB, [{ action: "create", path: "app.bsky.feed.post/c2", record: post("c2") }]),
    ]);
    await consumer.waitFor((r) => r.length >= 1);
    consumer.ws.send(JSON.stringify({ type: "options_update", payload: { wantedDids: ["bad"] } }));
    await consumer.waitFor((r) => r.length >= 2);
    expect(consumer.received[1]).toMatchObject({ error: "InvalidOptions" });
    consumer.ws.send(
      JSON.stringify({
        type: "options_update",
        payload: { wantedCollections: ["app.bsky.feed.like"], wantedDids: [BOB] },
      }),
    );
    // the update is applied in order with deliveries: give it a moment before appending
    await new Promise((r) => setTimeout(r, 200));
    await append([
      commit(ALICE, [{ action: "create", path: "app.bsky.feed.like/c3", record: like }]),
      commit(BOB, [
        { action: "create", path: "app.bsky.feed.post/c4", record: post("c4") },
        { action: "create", path: "app.bsky.feed.like/c5", record: like },
      ]),
    ]);
    await consumer.waitFor((r) => r.length >= 3);
    await new Promise((r) => setTimeout(r, 300));
    expect(opsOf(consumer.received.filter((m) => !("error" in m)))).toEqual([
      "create app.bsky.feed.post/c1",
      "create app.bsky.feed.like/c5",
    ]);
    consumer.ws.close();
  });

  it("requireHello holds every event until the first options_update", async () => {
    const consumer = await subscribe(`requireHello=true&wantedDids=${BOB}`);
    await append([
      commit(BOB, [{ action: "create", path: "app.bsky.feed.post/h1", record: post("h1") }]),
    ]);
    await new Promise((r) => setTimeout(r, 400));
    expect(consumer.received).toEqual([]);
    consumer.ws.send(JSON.stringify({ type: "options_update", payload: { wantedDids: [BOB] } }));
    await consumer.waitFor((r) => r.length >= 1);
    expect(opsOf(consumer.received)).toEqual(["create app.bsky.feed.post/h1"]);
    consumer.ws.close();
  });

  it("a time cursor replays across a seal, then continues live, each op once and in order", async () => {
    const carol = "did:plc:jetstreamcarol000000000";
    const since = Date.now() * 1000;
    const expected: string[] = [];
    for (let batch = 0; batch < 6; batch++) {
      const events: IngestEvent[] = [];
      for (let i = 0; i < 20; i++) {
        const rkey = `r${batch}x${i}`;
        expected.push(`create app.bsky.feed.post/${rkey}`);
        events.push(
          commit(carol, [
            {
              action: "create",
              path: `app.bsky.feed.post/${rkey}`,
              record: post("x".repeat(1500)),
            },
          ]),
        );
      }
      await append(events);
    }
    await sequencerStub(env).sealNow();
    const state = await sequencerStub(env).getLogState();
    expect(state.segments).toBeGreaterThan(0);
    await append([
      commit(carol, [{ action: "create", path: "app.bsky.feed.post/hot", record: post("hot") }]),
    ]);
    expected.push("create app.bsky.feed.post/hot");
    const consumer = await subscribe(`wantedDids=${carol}&cursor=${since}`);
    await consumer.waitFor((r) => r.length >= expected.length);
    await append([
      commit(carol, [{ action: "create", path: "app.bsky.feed.post/live", record: post("live") }]),
    ]);
    expected.push("create app.bsky.feed.post/live");
    await consumer.waitFor((r) => r.length >= expected.length);
    await new Promise((r) => setTimeout(r, 300));
    expect(opsOf(consumer.received)).toEqual(expected);
    // each event's time is when it was sequenced (jetstream/time.ts): after the cursor, strictly
    // increasing, none in the future
    const times = consumer.received.map((m) => m.time_us);
    for (let i = 1; i < times.length; i++)
      expect(times[i] as number).toBeGreaterThan(times[i - 1] as number);
    expect(times[0]).toBeGreaterThanOrEqual(since);
    expect(times.at(-1)).toBeLessThanOrEqual(Date.now() * 1000);
    consumer.ws.close();
  });
});

/** A consumer's messages as they came off the socket: text, or the bytes of a binary message. */
async function subscribeRaw(query: string, headers: Record<string, string> = {}) {
  const res = await SELF.fetch(`${RELAY}/subscribe?${query}`, {
    headers: { Upgrade: "websocket", ...headers },
  });
  const ws = res.webSocket;
  if (!ws) throw new Error(`no upgrade: ${res.status} ${await res.text()}`);
  ws.binaryType = "arraybuffer";
  ws.accept();
  const received: (string | Uint8Array)[] = [];
  ws.addEventListener("message", (e) => {
    received.push(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
  });
  const waitFor = async (count: number) => {
    const deadline = Date.now() + 15_000;
    while (received.length < count) {
      if (Date.now() > deadline) throw new Error(`timed out; received ${received.length}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { ws, received, waitFor };
}

describe("GET /subscribe?compress=true", () => {
  it("sends each message as one binary zstd frame that Jetstream's dictionary decompresses into the JSON an uncompressed consumer gets", async () => {
    const dave = "did:plc:jetstreamdave0000000000";
    const since = Date.now() * 1000;
    const events: IngestEvent[] = [];
    for (let i = 0; i < 12; i++)
      events.push(
        commit(dave, [
          { action: "create", path: `app.bsky.feed.post/z${i}`, record: post(`zstd ${i} ✨`) },
          { action: "create", path: `app.bsky.feed.like/z${i}`, record: like },
        ]),
      );
    events.push(identity(dave));
    await append(events);
    const expectedCount = 12 * 2 + 1;

    // replayed from a cursor, the times come from the log: every consumer gets the same JSON
    const plain = await subscribeRaw(`wantedDids=${dave}&cursor=${since}`);
    const compressed = await subscribeRaw(`wantedDids=${dave}&cursor=${since}&compress=true`);
    const byHeader = await subscribeRaw(`wantedDids=${dave}&cursor=${since}`, {
      "Socket-Encoding": "zstd",
    });
    await plain.waitFor(expectedCount);
    await compressed.waitFor(expectedCount);
    await byHeader.waitFor(expectedCount);
    await new Promise((r) => setTimeout(r, 300));

    expect(plain.received.every((m) => typeof m === "string")).toBe(true);
    // the package's own decompressor (its module holds the runtime our compressor loaded)
    await loadJetstreamZstd();
    const dctx = createDCtx();
    const decompress = (frames: (string | Uint8Array)[]) =>
      frames.map((frame) => {
        if (typeof frame === "string") throw new Error("a compressed consumer got a text message");
        return new TextDecoder().decode(
          decompressUsingDict(dctx, frame, JETSTREAM_ZSTD_DICTIONARY),
        );
      });
    const texts = decompress(compressed.received);
    expect(texts).toEqual(plain.received);
    expect(decompress(byHeader.received)).toEqual(plain.received);
    expect(texts.map((t) => (JSON.parse(t) as Message).kind).at(-1)).toBe("identity");
    const frameBytes = compressed.received.reduce((n, f) => n + (f as Uint8Array).byteLength, 0);
    const jsonBytes = texts.reduce((n, t) => n + new TextEncoder().encode(t).byteLength, 0);
    expect(frameBytes).toBeLessThan(jsonBytes);
    plain.ws.close();
    compressed.ws.close();
    byHeader.ws.close();
  });
});
