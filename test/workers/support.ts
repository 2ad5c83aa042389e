import { env, runInDurableObject, SELF } from "cloudflare:test";
import { CURSOR_HEADER, FANOUT_NAME_HEADER } from "../../src/fanout/fanout";
import { iterateRecords } from "../../src/log/records";
import { CID } from "../../src/protocol/cid";
import { decodeFrame, encodeFrame, type Frame } from "../../src/protocol/frame";
import type { IngestEvent } from "../../src/sequence/hot-log";
import { fanoutStub, sequencerStub } from "../../src/stubs";

export const RELAY = "http://relay.test";

const EMPTY_CID = CID.parse("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm");

/** A commit-shaped frame of about `size` bytes (the sequencer never looks inside blocks). */
export function commitFrame(
  upstreamSeq: number,
  did = "did:plc:testrepo000000000000000",
  size = 1500,
): Uint8Array {
  return encodeFrame({
    kind: "commit",
    body: {
      seq: upstreamSeq,
      rebase: false,
      tooBig: false,
      repo: did,
      commit: EMPTY_CID,
      rev: "3l6jd7dvzeg2c",
      since: null,
      blocks: new Uint8Array(size).fill(upstreamSeq % 251),
      ops: [],
      blobs: [],
      time: new Date(0).toISOString(),
    },
  });
}

let nextUpstream = 1;

/** Appends `count` events from `host` through the Sequencer RPC, as a HostIngester would. */
export async function appendEvents(count: number, host = "pds.test", size = 1500) {
  return sequencerStub(env).appendBatch({ events: ingestEvents(count, host, size) });
}

/** `count` new events from `host`, with upstream seqs no other call of this module used. */
export function ingestEvents(count: number, host = "pds.test", size = 1500): IngestEvent[] {
  const events: IngestEvent[] = [];
  for (let i = 0; i < count; i++) {
    const upstreamSeq = nextUpstream++;
    events.push({
      host,
      upstreamSeq,
      did: "did:plc:testrepo000000000000000",
      frame: commitFrame(upstreamSeq, undefined, size),
    });
  }
  return events;
}

export type Received = { seq: number | null; frame: Frame };

export type Consumer = {
  ws: WebSocket;
  received: Received[];
  closed: Promise<{ code: number; reason: string }>;
  waitFor(predicate: (r: Received[]) => boolean, timeoutMs?: number): Promise<Received[]>;
};

/** Connects a consumer to subscribeRepos through the Worker, as any client would. */
export async function connect(cursor?: number | string): Promise<Consumer> {
  const query = cursor === undefined ? "" : `?cursor=${cursor}`;
  const res = await SELF.fetch(`${RELAY}/xrpc/com.atproto.sync.subscribeRepos${query}`, {
    headers: { Upgrade: "websocket" },
  });
  return consumerFromUpgrade(res);
}

/**
 * Connects a consumer straight to the Fanout called `name`, as the Worker's subscribeRepos
 * handler does after checking the cursor (tests that need several consumers on one Fanout).
 * Calls made on the same `stub` reach the object in the order they were made.
 */
export async function connectToFanout(
  name: string,
  cursor?: number,
  stub = fanoutStub(env, name),
): Promise<Consumer> {
  const res = await stub.fetch(
    new Request(`${RELAY}/xrpc/com.atproto.sync.subscribeRepos`, {
      headers: {
        Upgrade: "websocket",
        [FANOUT_NAME_HEADER]: name,
        [CURSOR_HEADER]: cursor === undefined ? "" : String(cursor),
      },
    }),
  );
  return consumerFromUpgrade(res);
}

export async function consumerFromUpgrade(res: Response): Promise<Consumer> {
  const ws = res.webSocket;
  if (!ws) throw new Error(`no upgrade: ${res.status} ${await res.text()}`);
  ws.binaryType = "arraybuffer";
  ws.accept();
  const received: Received[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }));
  });
  ws.addEventListener("message", (e) => {
    const frame = decodeFrame(new Uint8Array(e.data as ArrayBuffer));
    const seq = "seq" in frame.body ? (frame.body as { seq: number }).seq : null;
    received.push({ seq, frame });
  });
  const waitFor = async (predicate: (r: Received[]) => boolean, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(received)) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out; received ${received.length} frames, last seq ${received.at(-1)?.seq}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
    return received;
  };
  return { ws, received, closed, waitFor };
}

export function seqs(received: Received[]): number[] {
  return received.filter((r) => r.seq !== null).map((r) => r.seq as number);
}

export function expectContiguous(values: number[], from: number, to: number): void {
  const expected = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const same = values.length === expected.length && values.every((v, i) => v === expected[i]);
  if (!same) {
    throw new Error(
      `expected seqs ${from}..${to} (${expected.length}), got ${values.length}: first ${values.slice(0, 5)} last ${values.slice(-5)}`,
    );
  }
}

export function recordSeqs(records: Uint8Array): number[] {
  return [...iterateRecords(records)].map((r) => r.seq);
}

/**
 * A Jetstream consumer (`GET /subscribe`) inside the pool: every text message parsed as JSON and
 * turned into a `T` by `parse`, in arrival order.
 */
export async function subscribeJetstream<T>(query: string, parse: (message: unknown) => T) {
  const res = await SELF.fetch(`${RELAY}/subscribe?${query}`, {
    headers: { Upgrade: "websocket" },
  });
  const ws = res.webSocket;
  if (!ws) throw new Error(`no upgrade: ${res.status} ${await res.text()}`);
  ws.accept();
  const received: T[] = [];
  ws.addEventListener("message", (e) => {
    if (typeof e.data !== "string") throw new Error("Jetstream messages are text");
    received.push(parse(JSON.parse(e.data)));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }));
  });
  const waitFor = async (predicate: (r: T[]) => boolean, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(received)) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out; received ${received.length}: ${JSON.stringify(received.slice(-3))}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { ws, received, closed, waitFor };
}

/** The Sequencer's head seq. */
export async function logHead(): Promise<number> {
  return (await sequencerStub(env).getLogState()).headSeq;
}

/**
 * Sets every consumer socket of a Fanout to `live` at `cursor` (the Fanout's own state): with a
 * delivery in between, a delivery the consumers lost for real.
 */
export async function positionAll(name: string, cursor: number): Promise<void> {
  await runInDurableObject(fanoutStub(env, name), (_instance, state) => {
    for (const ws of state.getWebSockets()) ws.serializeAttachment({ cursor, live: true });
  });
}

/** Waits until the Fanout `name` has received a delivery through `seq`. */
export async function waitForDelivery(name: string, seq: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (((await fanoutStub(env, name).stats()).deliveredThrough ?? 0) < seq) {
    if (Date.now() > deadline) throw new Error(`seq ${seq} never reached ${name}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
