import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { cursorForTime, type ReplayEvent, replay } from "../../src/client";
import { decodeFrame } from "../../src/protocol/frame";
import { runActivity } from "../support/activity";
import { type PdsNetwork, startPdsNetwork } from "../support/pds-network";
import { type RelayProcess, requestCrawl, startRelay } from "../support/relay-process";

// History over HTTP against the real relay: freehose under `wrangler dev`, sealing a segment
// every few events (SEGMENT_MAX_BYTES small), fed by two reference PDS hosts that keep writing.
// A consumer that starts inside the sealed range reads through the client (plan, parallel
// segment downloads, re-plan, hand-over to the socket) and must receive exactly what a plain
// `subscribeRepos?cursor=` consumer started at the same cursor receives: the same seqs, the
// same frame bytes, while segments keep being sealed under it.
// Then the README's example (posts since a time, from cursorForTime) counts what the plain
// consumer saw.

const SUBSCRIBE = "/xrpc/com.atproto.sync.subscribeRepos";

let network: PdsNetwork;
let relay: RelayProcess;

type Plan = { segments: { firstSeq: number; lastSeq: number }[]; sealedThrough: number };

async function plan(after: number): Promise<Plan> {
  const res = await fetch(`${relay.url}/segments?after=${after}&limit=1000`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Plan;
}

async function headSeq(): Promise<number> {
  return ((await (await fetch(`${relay.url}/xrpc/_health`)).json()) as { seq: number }).seq;
}

/** A plain consumer: every binary message of subscribeRepos?cursor=, as received. */
function plainConsumer(cursor: number): {
  frames: Uint8Array[];
  close(): void;
  ready: Promise<void>;
} {
  const ws = new WebSocket(`${relay.wsUrl}${SUBSCRIBE}?cursor=${cursor}`);
  const frames: Uint8Array[] = [];
  ws.on("message", (data: Buffer) => frames.push(new Uint8Array(data)));
  return {
    frames,
    close: () => ws.close(),
    ready: new Promise((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    }),
  };
}

function seqOf(frame: Uint8Array): number | null {
  const decoded = decodeFrame(frame);
  return "seq" in decoded.body ? (decoded.body.seq as number) : null;
}

beforeAll(async () => {
  network = await startPdsNetwork({ pdsCount: 2, accountsPerPds: 3 });
  relay = await startRelay({
    plcUrl: network.plcUrl,
    // a segment every few events, so the replay crosses many and more are sealed under it
    vars: { SEGMENT_MAX_BYTES: "12000" },
  });
  for (const host of network.hosts) {
    const res = await requestCrawl(relay.url, host.hostname);
    expect(res.status, await res.text()).toBe(200);
  }
}, 180_000);

afterAll(async () => {
  await relay?.stop();
  await network?.close();
});

describe("replay over HTTP against the relay", () => {
  it("gives exactly what subscribeRepos?cursor= gives, while the relay ingests and seals", async () => {
    // history first: enough sealed segments to start inside one
    // (a segment closes once the hot log passes SEGMENT_MAX_BYTES at a group commit, so how many
    // 60 actions fill depends on how the machine batched them: write more until there are four)
    await runActivity(network, { actions: 60, seed: 12 });
    const sealedFour = async () => (await plan(0)).segments.length >= 4;
    for (let round = 1; round <= 6 && !(await waitUntilAsync(sealedFour, 10_000)); round++)
      await runActivity(network, { actions: 20, seed: 12 + round });
    expect(await sealedFour(), "the relay to seal segments").toBe(true);
    const before = await plan(0);
    const second = before.segments[1]!;
    // inside the second segment, so the client must trim its first events
    const cursor = Math.min(second.firstSeq + 1, second.lastSeq - 1);
    expect(cursor).toBeGreaterThan(second.firstSeq - 1);

    // the relay keeps ingesting (and sealing) for the whole replay
    const activity = new AbortController();
    const writesStarted = Date.now();
    // a segment whose last event is older than writesStarted ends at or below the head now, so
    // cursorForTime(writesStarted) (the end of the last such segment) cannot be past it (the relay
    // seals all along: `before`, a plan made earlier, is no bound on a loaded machine)
    const headAtWritesStart = (
      (await (await fetch(`${relay.url}/xrpc/_health`)).json()) as { seq: number }
    ).seq;
    const writing = runActivity(network, {
      seed: 13,
      signal: activity.signal,
      eventsPerSecond: 15,
      rare: true,
    });

    const plain = plainConsumer(cursor);
    await plain.ready;
    const received: ReplayEvent[] = [];
    const errors: unknown[] = [];
    const stop = new AbortController();
    const reading = (async () => {
      for await (const event of replay({
        service: relay.url,
        cursor,
        WebSocket,
        parallelism: 2,
        // small plan pages: the client pages through the plan as well
        planLimit: 3,
        verify: { plcUrl: network.plcUrl },
        signal: stop.signal,
      })) {
        received.push(event);
        // segments are sealed while the client is still in the history it planned: it holds
        // its first event until the relay has sealed past the plan made before it started
        if (received.length === 1)
          await waitUntilAsync(
            async () => (await plan(0)).sealedThrough > before.sealedThrough,
            60_000,
          );
        // and reads slowly
        if (received.length % 10 === 0) await new Promise((r) => setTimeout(r, 100));
      }
    })().catch((err: unknown) => errors.push(err));

    await new Promise((r) => setTimeout(r, 12_000));
    activity.abort();
    await writing;
    // events still on their way through the ingesters arrive after the writes stop: the head is
    // final once both consumers have reached it and it has not moved for a while
    let head = -1;
    let stableSince = Date.now();
    const caughtUp = await waitUntilAsync(async () => {
      const now = await headSeq();
      if (now !== head) {
        head = now;
        stableSince = Date.now();
      }
      const plainLast = plain.frames.length > 0 ? seqOf(plain.frames.at(-1)!) : null;
      return (
        received.at(-1)?.seq === head && plainLast === head && Date.now() - stableSince > 3_000
      );
    }, 60_000);
    const sealedAtEnd = (await plan(0)).sealedThrough;
    stop.abort();
    plain.close();
    await reading;
    expect(errors).toEqual([]);
    expect(caughtUp, `both consumers reach head ${head}: client at ${received.at(-1)?.seq}`).toBe(
      true,
    );

    const plainEvents = plain.frames
      .map((frame) => ({ seq: seqOf(frame), frame }))
      .filter((e): e is { seq: number; frame: Uint8Array } => e.seq !== null);
    expect(received.map((e) => e.seq)).toEqual(plainEvents.map((e) => e.seq));
    for (let i = 0; i < received.length; i++)
      expect(
        Buffer.from(received[i]!.frame).equals(Buffer.from(plainEvents[i]!.frame)),
        `frame of seq ${received[i]!.seq}`,
      ).toBe(true);
    // contiguous from the cursor to the head
    expect(received[0]?.seq).toBe(cursor + 1);
    expect(received.at(-1)?.seq).toBe(head);
    expect(received.length).toBe(head - cursor);

    // both paths were taken, and history sealed during the replay came over HTTP as well
    const fromSegments = received.filter((e) => e.source === "segment");
    expect(fromSegments.length).toBeGreaterThan(0);
    expect(received.some((e) => e.source === "live")).toBe(true);
    expect(sealedAtEnd).toBeGreaterThan(before.sealedThrough);
    expect(fromSegments.at(-1)!.seq).toBeGreaterThan(before.sealedThrough);

    // the README's example: the posts since a time, starting from cursorForTime
    const postsSince = (events: { frame: Uint8Array }[]) =>
      events
        .map((e) => decodeFrame(e.frame))
        .filter((f) => f.kind === "commit" && Date.parse(f.body.time) >= writesStarted)
        .flatMap((f) => (f.kind === "commit" ? f.body.ops : []))
        .filter((op) => op.action === "create" && op.path.startsWith("app.bsky.feed.post/")).length;
    const startCursor = await cursorForTime({ service: relay.url, time: writesStarted });
    expect(startCursor).toBeLessThanOrEqual(headAtWritesStart);
    let posts = 0;
    for await (const event of replay({ service: relay.url, cursor: startCursor, WebSocket })) {
      if (event.type === "#commit" && Date.parse(event.body.time) >= writesStarted)
        for (const op of event.body.ops)
          if (op.action === "create" && op.path.startsWith("app.bsky.feed.post/")) posts++;
      if (event.seq >= head) break;
    }
    expect(posts).toBeGreaterThan(0);
    expect(posts).toBe(postsSince(plainEvents));
  });
});

async function waitUntilAsync(ok: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
  return true;
}
