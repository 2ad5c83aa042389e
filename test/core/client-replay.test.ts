import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import {
  cursorForTime,
  ReplayConnectionClosed,
  type ReplayEvent,
  ReplayGapError,
  ReplayStreamError,
  replay,
} from "../../src/client";
import { encodeRecords } from "../../src/log/records";
import { encodeSegment } from "../../src/log/segment";
import { encodeErrorFrame, encodeFrame, encodeInfoFrame } from "../../src/protocol/frame";

// replay() against real segment bytes (src/log/segment.ts) and real frames, served by a small
// Node HTTP + WebSocket server that follows the relay's contract: /segments plans,
// /segments/<name> bytes, subscribeRepos?cursor=N replaying everything > N then live. The
// server can seal while the client downloads, and can be told to misbehave (overlap, skip a
// seq, send an error frame) so the client's hand-over rules are exercised. The real relay is
// the integration test's (test/integration/http-replay.test.ts).

type Stored = { seq: number; frame: Uint8Array };
type Sealed = {
  firstSeq: number;
  lastSeq: number;
  name: string;
  bytes: Uint8Array;
};

function eventFrame(seq: number): Uint8Array {
  const body = { seq, did: `did:plc:account${seq % 7}`, time: new Date(seq * 1000).toISOString() };
  return seq % 3 === 0
    ? encodeFrame({ kind: "account", body: { ...body, active: seq % 2 === 0 } })
    : encodeFrame({ kind: "identity", body });
}

class TestRelay {
  readonly log: Stored[] = [];
  readonly segments: Sealed[] = [];
  readonly sockets = new Set<WebSocket>();
  readonly downloads: string[] = [];
  plans = 0;
  /** Runs before each plan is answered (e.g. to seal more). */
  beforePlan: ((after: number) => void) | null = null;
  /** The socket starts this many seqs before the cursor (a misbehaving relay). */
  socketOverlap = 0;
  /** The socket never sends these seqs. */
  socketSkips = new Set<number>();
  /** The socket answers with this error frame instead. */
  socketError: string | null = null;
  servesPlans = true;
  /** Segments deleted by retention after they were planned: 404 and out of later plans. */
  deleteAfterPlan = new Set<string>();
  /** The socket is closed by the relay once the backlog is sent. */
  closeAfterBacklog = false;
  server!: Server;
  url = "";

  append(count: number): void {
    for (let i = 0; i < count; i++) {
      const seq = (this.log.at(-1)?.seq ?? 0) + 1;
      const record = { seq, frame: eventFrame(seq) };
      this.log.push(record);
      for (const ws of this.sockets) this.send(ws, record);
    }
  }

  get sealedThrough(): number {
    return this.segments.at(-1)?.lastSeq ?? 0;
  }

  /** Seals every hot event, in segments of at most `perSegment`. */
  seal(perSegment: number): void {
    let hot = this.log.filter((r) => r.seq > this.sealedThrough);
    while (hot.length > 0) {
      const records = hot.slice(0, perSegment);
      hot = hot.slice(perSegment);
      const firstSeq = records[0]!.seq;
      this.segments.push({
        firstSeq,
        lastSeq: records.at(-1)!.seq,
        name: String(firstSeq).padStart(20, "0"),
        bytes: encodeSegment(encodeRecords(records)).bytes,
      });
    }
  }

  send(ws: WebSocket, record: Stored): void {
    if (!this.socketSkips.has(record.seq)) ws.send(record.frame);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/segments" && this.servesPlans) {
        this.plans++;
        const after = Number(url.searchParams.get("after"));
        const limit = Number(url.searchParams.get("limit") ?? 1000);
        this.beforePlan?.(after);
        for (const name of this.deleteAfterPlan) {
          if (this.segments.some((s) => s.name === name)) continue;
          this.deleteAfterPlan.delete(name);
        }
        const listed = this.segments.filter((s) => s.lastSeq > after).slice(0, limit);
        res.setHeader("Content-Type", "application/json");
        res.end(
          JSON.stringify({
            segments: listed.map((s) => ({
              firstSeq: s.firstSeq,
              lastSeq: s.lastSeq,
              firstTime: new Date(s.firstSeq * 1000).toISOString(),
              lastTime: new Date(s.lastSeq * 1000).toISOString(),
              bytes: s.bytes.byteLength,
              url: `/segments/${s.name}`,
            })),
            sealedThrough: this.sealedThrough,
            cursor: listed.at(-1)?.lastSeq ?? Math.max(after, this.sealedThrough),
          }),
        );
        return;
      }
      const segment = this.segments.find((s) => url.pathname === `/segments/${s.name}`);
      if (segment && this.deleteAfterPlan.has(segment.name)) {
        this.segments.splice(this.segments.indexOf(segment), 1);
        this.deleteAfterPlan.delete(segment.name);
        res.statusCode = 404;
        res.end(JSON.stringify({ error: "NotFound" }));
        return;
      }
      if (!segment) {
        res.statusCode = 404;
        res.end(JSON.stringify({ error: "NotFound" }));
        return;
      }
      this.downloads.push(segment.name);
      // answers finish out of order, as parallel downloads do
      setTimeout(() => res.end(segment.bytes), Math.floor(Math.random() * 15));
    });
    const wss = new WebSocketServer({ server: this.server });
    wss.on("connection", (ws, req) => {
      const cursor = Number(new URL(req.url ?? "/", "http://x").searchParams.get("cursor"));
      if (this.socketError) {
        ws.send(encodeErrorFrame(this.socketError, "test"));
        ws.close(1008);
        return;
      }
      ws.send(encodeInfoFrame("Hello"));
      for (const record of this.log)
        if (record.seq > cursor - this.socketOverlap) this.send(ws, record);
      if (this.closeAfterBacklog) {
        ws.close(1001, "going away");
        return;
      }
      this.sockets.add(ws);
      ws.on("close", () => this.sockets.delete(ws));
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

let relay: TestRelay;

afterEach(async () => {
  await relay?.stop();
});

async function take(
  count: number,
  options: Partial<Parameters<typeof replay>[0]> & { cursor: number },
): Promise<ReplayEvent[]> {
  const out: ReplayEvent[] = [];
  for await (const event of replay({ service: relay.url, WebSocket, ...options })) {
    out.push(event);
    if (out.length >= count) break;
  }
  return out;
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("replay over HTTP segments, then the socket", () => {
  it("yields every event after the cursor once, in order, segments downloaded in parallel", async () => {
    relay = new TestRelay();
    relay.append(500);
    relay.seal(40);
    relay.append(30);
    await relay.start();
    const events = await take(530 - 123, { cursor: 123, parallelism: 3, planLimit: 2 });
    expect(events.map((e) => e.seq)).toEqual(range(124, 530));
    // sealed events came over HTTP, the hot tail over the socket
    expect(events.filter((e) => e.source === "segment").map((e) => e.seq)).toEqual(range(124, 500));
    for (const e of events) {
      expect(e.frame).toEqual(eventFrame(e.seq));
      expect(e.body.seq).toBe(e.seq);
      expect(e.type).toBe(e.seq % 3 === 0 ? "#account" : "#identity");
    }
    // the segment holding the cursor and everything after it, each once; none before it
    expect(relay.downloads).toEqual(
      relay.segments.filter((s) => s.lastSeq > 123).map((s) => s.name),
    );
  });

  it("continues with live events after the backlog", async () => {
    relay = new TestRelay();
    relay.append(50);
    relay.seal(20);
    await relay.start();
    const seen: number[] = [];
    for await (const event of replay({ service: relay.url, cursor: 0, WebSocket })) {
      seen.push(event.seq);
      if (event.seq === 50) relay.append(5);
      if (seen.length === 55) break;
    }
    expect(seen).toEqual(range(1, 55));
  });

  it("re-plans before opening the socket: segments sealed meanwhile come over HTTP", async () => {
    relay = new TestRelay();
    relay.append(200);
    relay.seal(50);
    relay.append(20);
    await relay.start();
    let sealedMore = false;
    relay.beforePlan = (after) => {
      // once the first plan is used up, the relay seals what was hot and takes more events
      if (after >= 200 && !sealedMore) {
        sealedMore = true;
        relay.seal(50);
        relay.append(15);
      }
    };
    const events = await take(235 - 10, { cursor: 10 });
    expect(events.map((e) => e.seq)).toEqual(range(11, 235));
    expect(events.filter((e) => e.source === "segment").at(-1)?.seq).toBe(220);
    expect(events.filter((e) => e.source === "live").map((e) => e.seq)).toEqual(range(221, 235));
  });

  it("drops what the socket repeats from before its cursor", async () => {
    relay = new TestRelay();
    relay.append(100);
    relay.seal(30);
    relay.append(10);
    await relay.start();
    relay.socketOverlap = 25;
    const events = await take(110 - 50, { cursor: 50 });
    expect(events.map((e) => e.seq)).toEqual(range(51, 110));
  });

  it("stops with ReplayGapError when the socket skips a seq", async () => {
    relay = new TestRelay();
    relay.append(60);
    relay.seal(30);
    relay.append(10);
    relay.socketSkips.add(64);
    await relay.start();
    const seen: number[] = [];
    const run = async () => {
      for await (const event of replay({ service: relay.url, cursor: 0, WebSocket }))
        seen.push(event.seq);
    };
    const error = await run().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ReplayGapError);
    expect(error).toMatchObject({ lastSeq: 63, receivedSeq: 65 });
    expect(seen).toEqual(range(1, 63));
  });

  it("stops with ReplayGapError when the plan leaves a hole between segments", async () => {
    relay = new TestRelay();
    relay.append(90);
    relay.seal(30);
    relay.segments.splice(1, 1);
    await relay.start();
    const error = await take(100, { cursor: 0, historyOnly: true }).catch((err: unknown) => err);
    expect(error).toMatchObject({ name: "ReplayGap", lastSeq: 30, receivedSeq: 61 });
  });

  it("reports the socket's error frame", async () => {
    relay = new TestRelay();
    relay.append(10);
    relay.seal(10);
    relay.socketError = "ConsumerTooSlow";
    await relay.start();
    const error = await take(100, { cursor: 0 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ReplayStreamError);
    expect(error).toMatchObject({ error: "ConsumerTooSlow", lastSeq: 10 });
  });

  it("replays from the socket alone when the relay serves no plan", async () => {
    relay = new TestRelay();
    relay.append(40);
    relay.seal(20);
    relay.servesPlans = false;
    await relay.start();
    const events = await take(30, { cursor: 10 });
    expect(events.map((e) => e.seq)).toEqual(range(11, 40));
    expect(events.every((e) => e.source === "live")).toBe(true);
  });

  it("ends without opening the socket when asked for history only", async () => {
    relay = new TestRelay();
    relay.append(70);
    relay.seal(25);
    relay.append(5);
    await relay.start();
    const events = await take(1000, { cursor: 0, historyOnly: true });
    expect(events.map((e) => e.seq)).toEqual(range(1, 70));
    expect(relay.sockets.size).toBe(0);
  });

  it("reports the relay closing the socket, with the last seq to resume from", async () => {
    relay = new TestRelay();
    relay.append(30);
    relay.seal(10);
    relay.append(4);
    relay.closeAfterBacklog = true;
    await relay.start();
    const error = await take(1000, { cursor: 0 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ReplayConnectionClosed);
    expect(error).toMatchObject({ code: 1001, lastSeq: 34 });
  });
});

describe("stopping", () => {
  it("ends quietly when the signal aborts, downloads in flight or not, and opens no socket", async () => {
    relay = new TestRelay();
    relay.append(400);
    relay.seal(20);
    await relay.start();
    const stop = new AbortController();
    const seen: number[] = [];
    for await (const event of replay({
      service: relay.url,
      cursor: 0,
      WebSocket,
      signal: stop.signal,
    })) {
      seen.push(event.seq);
      if (event.seq === 15) stop.abort();
    }
    expect(seen).toEqual(range(1, 15));
    expect(relay.sockets.size).toBe(0);
  });
});

describe("segments deleted by retention between plan and download", () => {
  it("re-plans and starts at the oldest segment left when nothing was yielded yet", async () => {
    relay = new TestRelay();
    relay.append(60);
    relay.seal(20);
    relay.deleteAfterPlan.add(relay.segments[0]!.name);
    await relay.start();
    const events = await take(40, { cursor: 0, historyOnly: true });
    expect(events.map((e) => e.seq)).toEqual(range(21, 60));
  });

  it("reports the hole as a gap once events were yielded", async () => {
    relay = new TestRelay();
    relay.append(60);
    relay.seal(20);
    relay.deleteAfterPlan.add(relay.segments[1]!.name);
    await relay.start();
    const error = await take(100, { cursor: 0, historyOnly: true, parallelism: 1 }).catch(
      (err: unknown) => err,
    );
    expect(error).toMatchObject({ name: "ReplayGap", lastSeq: 20, receivedSeq: 41 });
  });
});

describe("cursorForTime", () => {
  it("starts just before the first segment that reaches the time, or after all sealed ones", async () => {
    relay = new TestRelay();
    // event seq N has time N seconds after the epoch; segments of 10
    relay.append(100);
    relay.seal(10);
    await relay.start();
    expect(await cursorForTime({ service: relay.url, time: 0 })).toBe(0);
    expect(await cursorForTime({ service: relay.url, time: 35_000 })).toBe(30);
    expect(await cursorForTime({ service: relay.url, time: new Date(91_000) })).toBe(90);
    expect(await cursorForTime({ service: relay.url, time: 500_000 })).toBe(100);
  });
});
