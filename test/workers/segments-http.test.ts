import {
  createExecutionContext,
  env,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { iterateRecords } from "../../src/log/records";
import { decodeTrailer, segmentKey, TRAILER_BYTES } from "../../src/log/segment";
import { meterSnapshot } from "../../src/metering/meter";
import { expireSegments } from "../../src/sequence/seal";
import { readSegmentPage } from "../../src/sequence/segment-index";
import { sequencerStub } from "../../src/stubs";
import type { SegmentPlan } from "../../src/xrpc/segment-plan";
import { appendEvents, RELAY } from "./support";
import { expectXrpcError, get } from "./xrpc-helpers";

// History over HTTP: GET /segments plans, GET /segments/<name> serves the bytes, read here
// with nothing but docs/segment-format.md's layout (trailer, then records).

async function plan(query: string): Promise<SegmentPlan> {
  const res = await get(`/segments${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as SegmentPlan;
}

/** A download through the Worker's own fetch, waiting for the work it left running (cache fill). */
async function download(
  path: string,
  headers?: Record<string, string>,
  method = "GET",
): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${RELAY}${path}`, { headers, method }), env, ctx);
  const body = res.body ? new Uint8Array(await res.arrayBuffer()) : null;
  await waitOnExecutionContext(ctx);
  return new Response(body, res);
}

async function r2Reads<T>(fn: () => Promise<T>): Promise<{ value: T; classB: number }> {
  const before = meterSnapshot().r2.classB;
  const value = await fn();
  return { value, classB: meterSnapshot().r2.classB - before };
}

/** The seqs a segment holds, read from its bytes as the format document says. */
function seqsOf(bytes: Uint8Array): number[] {
  const trailer = decodeTrailer(bytes.subarray(bytes.byteLength - TRAILER_BYTES));
  const seqs = [...iterateRecords(bytes.subarray(0, trailer.indexOffset))].map((r) => r.seq);
  expect(seqs.length).toBe(trailer.count);
  expect([seqs[0], seqs.at(-1)]).toEqual([trailer.firstSeq, trailer.lastSeq]);
  return seqs;
}

async function r2Bytes(firstSeq: number): Promise<{ bytes: Uint8Array; httpEtag: string }> {
  const object = await env.EVENT_LOG.get(segmentKey(firstSeq));
  if (!object) throw new Error(`segment ${firstSeq} is not in R2`);
  return { bytes: new Uint8Array(await object.arrayBuffer()), httpEtag: object.httpEtag };
}

let sealed = 0;

/** A segment sealed now, so no download has cached it yet. */
async function freshSegment(): Promise<SegmentPlan["segments"][number]> {
  await appendEvents(30);
  const outcome = await sequencerStub(env).sealNow();
  if (!outcome.sealed) throw new Error("nothing sealed");
  const segment = (await plan(`?after=${outcome.lastSeq - 1}`)).segments[0];
  if (!segment || segment.firstSeq !== outcome.firstSeq) throw new Error("not planned");
  return segment;
}

beforeAll(async () => {
  // six segments of 30 events each, sealed one at a time
  for (let i = 0; i < 6; i++) {
    await appendEvents(30);
    const outcome = await sequencerStub(env).sealNow();
    if (outcome.sealed) sealed = outcome.lastSeq;
  }
  await appendEvents(5); // a hot tail that no plan lists
});

describe("GET /segments", () => {
  it("lists every sealed seq after the cursor exactly once, in seq order, for every cursor", async () => {
    const whole = await plan("");
    expect(whole.sealedThrough).toBe(sealed);
    expect(whole.segments.length).toBeGreaterThanOrEqual(6);
    expect(whole.cursor).toBe(sealed);
    expect(whole.oldestSeq).toBe(whole.segments[0]?.firstSeq);
    const contents = new Map<number, number[]>();
    for (const s of whole.segments) {
      expect(s.url).toBe(`/segments/${String(s.firstSeq).padStart(20, "0")}`);
      expect(new Date(s.firstTime).toISOString()).toBe(s.firstTime);
      expect(Date.parse(s.lastTime)).toBeGreaterThanOrEqual(Date.parse(s.firstTime));
      const res = await download(s.url);
      const bytes = new Uint8Array(await res.arrayBuffer());
      expect(bytes.byteLength).toBe(s.bytes);
      const seqs = seqsOf(bytes);
      expect([seqs[0], seqs.at(-1)]).toEqual([s.firstSeq, s.lastSeq]);
      contents.set(s.firstSeq, seqs);
    }
    const last = whole.segments.at(-1)?.lastSeq ?? 0;
    // a cursor at each edge and inside segments: the listed segments, cut at the cursor, hold
    // exactly cursor + 1 .. sealedThrough
    for (const after of [0, 1, 29, 30, 31, 45, last - 1, last, last + 3]) {
      const p = await plan(`?after=${after}`);
      const held = p.segments.flatMap((s) => contents.get(s.firstSeq) ?? []);
      expect(held.filter((seq) => seq > after)).toEqual(
        Array.from({ length: Math.max(0, sealed - after) }, (_, i) => after + 1 + i),
      );
      // the first listed segment is the one holding after + 1: nothing listed is all old
      if (p.segments[0]) expect(p.segments[0].lastSeq).toBeGreaterThan(after);
      expect(p.cursor).toBe(Math.max(after, sealed));
    }
  });

  it("pages by cursor: limit segments a page, the next page after the cursor", async () => {
    const whole = await plan("?limit=1000");
    const paged: SegmentPlan["segments"] = [];
    let cursor = 0;
    let pages = 0;
    const callsBefore = meterSnapshot().calls["Sequencer.listSegments"] ?? 0;
    for (; pages < 20; pages++) {
      const page = await plan(`?after=${cursor}&limit=2`);
      expect(page.segments.length).toBeLessThanOrEqual(2);
      if (page.segments.length === 0) break;
      paged.push(...page.segments);
      expect(page.cursor).toBe(page.segments.at(-1)?.lastSeq);
      cursor = page.cursor;
    }
    expect(paged).toEqual(whole.segments);
    expect(cursor).toBe(whole.sealedThrough);
    // one Sequencer request per plan (the empty last page included)
    expect((meterSnapshot().calls["Sequencer.listSegments"] ?? 0) - callsBefore).toBe(pages + 1);
  });

  it.each([
    "?after=-1",
    "?after=abc",
    "?after=1.5",
    "?limit=0",
    "?limit=1001",
    "?limit=x",
    "?after=99999999999999999999",
  ])("a bad parameter (%s) is 400 InvalidRequest", async (query) => {
    await expectXrpcError(await get(`/segments${query}`), 400, "InvalidRequest");
  });
});

describe("GET /segments/<name>", () => {
  it("serves the object's bytes with a strong ETag, immutable caching and its length", async () => {
    const [first] = (await plan("")).segments;
    if (!first) throw new Error("no segment");
    const r2 = await r2Bytes(first.firstSeq);
    const res = await download(first.url);
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(r2.bytes);
    expect(res.headers.get("ETag")).toBe(r2.httpEtag);
    expect(res.headers.get("ETag")).toMatch(/^"[^"]+"$/);
    expect(res.headers.get("Cache-Control")).toBe("public, max-age=31536000, immutable");
    expect(res.headers.get("Content-Length")).toBe(String(r2.bytes.byteLength));
    expect(res.headers.get("Accept-Ranges")).toBe("bytes");
    const head = await download(first.url, undefined, "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers.get("ETag")).toBe(r2.httpEtag);
    expect(await head.arrayBuffer()).toHaveProperty("byteLength", 0);
  });

  it("is readable from any origin, errors included, and answers the preflight of a conditional download", async () => {
    const [first] = (await plan("")).segments;
    if (!first) throw new Error("no segment");
    for (const res of [
      await get("/segments"),
      await get("/segments?limit=0"),
      await download(first.url),
      await download("/segments/09999999999999999999"),
    ]) {
      expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
      expect(res.headers.get("Access-Control-Expose-Headers")).toContain("ETag");
    }
    const preflight = await download(
      first.url,
      {
        Origin: "https://app.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match",
      },
      "OPTIONS",
    );
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("Access-Control-Allow-Headers")).toContain("If-None-Match");
  });

  it("answers ranges, If-None-Match and whole downloads from the cache after the first read of R2", async () => {
    const segment = await freshSegment();
    const { bytes, httpEtag } = await r2Bytes(segment.firstSeq);
    const size = bytes.byteLength;

    // first request, a range: read from R2 (the whole object, which fills the cache)
    const miss = await r2Reads(() => download(segment.url, { Range: "bytes=100-1099" }));
    expect(miss.classB).toBe(1);
    expect(miss.value.status).toBe(206);
    expect(miss.value.headers.get("Content-Range")).toBe(`bytes 100-1099/${size}`);
    expect(miss.value.headers.get("Content-Length")).toBe("1000");
    expect(new Uint8Array(await miss.value.arrayBuffer())).toEqual(bytes.subarray(100, 1100));

    // everything after comes from the cache: no R2 read
    const hit = await r2Reads(async () => {
      const range = await download(segment.url, { Range: "bytes=100-1099" });
      const suffix = await download(segment.url, { Range: `bytes=-${TRAILER_BYTES}` });
      const notModified = await download(segment.url, { "If-None-Match": httpEtag });
      const whole = await download(segment.url);
      const unsatisfiable = await download(segment.url, { Range: `bytes=${size}-` });
      return { range, suffix, notModified, whole, unsatisfiable };
    });
    expect(hit.value.unsatisfiable.status).toBe(416);
    expect(hit.classB).toBe(0);
    expect(hit.value.range.status).toBe(206);
    expect(new Uint8Array(await hit.value.range.arrayBuffer())).toEqual(bytes.subarray(100, 1100));
    expect(hit.value.suffix.status).toBe(206);
    expect(new Uint8Array(await hit.value.suffix.arrayBuffer())).toEqual(
      bytes.subarray(size - TRAILER_BYTES),
    );
    expect(hit.value.notModified.status).toBe(304);
    expect(hit.value.whole.status).toBe(200);
    expect(hit.value.whole.headers.get("ETag")).toBe(httpEtag);
    expect(new Uint8Array(await hit.value.whole.arrayBuffer())).toEqual(bytes);
  });

  it("answers If-None-Match with 304 and an unsatisfiable range with 416 on a first read too", async () => {
    const [a, b, c] = [await freshSegment(), await freshSegment(), await freshSegment()];
    const { httpEtag } = await r2Bytes(a.firstSeq);
    const first = await r2Reads(async () => {
      const notModified = await download(a.url, { "If-None-Match": `"other", ${httpEtag}` });
      const modified = await download(b.url, { "If-None-Match": httpEtag });
      const unsatisfiable = await download(c.url, { Range: `bytes=${10_000_000}-` });
      return { notModified, modified, unsatisfiable };
    });
    expect(first.classB).toBe(3);
    const { notModified, modified, unsatisfiable } = first.value;
    expect(notModified.status).toBe(304);
    expect(notModified.headers.get("ETag")).toBe(httpEtag);
    expect(modified.status).toBe(200);
    expect(unsatisfiable.status).toBe(416);
    expect(unsatisfiable.headers.get("Content-Range")).toMatch(/^bytes \*\/\d+$/);
  });

  it.each(["/segments/abc", "/segments/1", "/segments/00000000000000000001/x", "/segments/"])(
    "a name that is not a segment's (%s) is 404",
    async (path) => {
      await expectXrpcError(await get(path), 404, "NotFound");
    },
  );

  it("a segment that was never sealed is 404", async () => {
    await expectXrpcError(await get("/segments/09999999999999999999"), 404, "NotFound");
  });
});

describe("retention", () => {
  it("removes a segment from the plan before it deletes the object, and then it is 404", async () => {
    const before = await plan("");
    const expiring = before.segments.slice(0, 2);
    const cutoffMs = Date.parse(expiring.at(-1)?.lastTime ?? "") + 1;
    // at the moment each delete reaches R2, the index must no longer list what it deletes
    const listedAtDelete: number[][] = [];
    await runInDurableObject(sequencerStub(env), async (_instance, state) => {
      const bucket = env.EVENT_LOG;
      const observed = new Proxy(bucket, {
        get(target, property) {
          if (property === "delete")
            return (keys: string | string[]) => {
              const deleting = new Set([keys].flat());
              listedAtDelete.push(
                readSegmentPage(state.storage.sql, 0, 1000)
                  .segments.map((s) => s.firstSeq)
                  .filter((seq) => deleting.has(segmentKey(seq))),
              );
              return target.delete(keys);
            };
          return Reflect.get(target, property, target);
        },
      });
      return expireSegments(state.storage, observed, cutoffMs);
    });
    expect(listedAtDelete.length).toBeGreaterThan(0);
    for (const listed of listedAtDelete) expect(listed).toEqual([]);

    const after = await plan("");
    const gone = new Set(expiring.map((s) => s.firstSeq));
    expect(after.segments.some((s) => gone.has(s.firstSeq))).toBe(false);
    expect(after.oldestSeq).toBeGreaterThan(expiring.at(-1)?.lastSeq ?? 0);
    expect(after.segments[0]?.firstSeq).toBe(after.oldestSeq);
    for (const s of expiring) {
      expect(await env.EVENT_LOG.head(segmentKey(s.firstSeq))).toBeNull();
      // the tests above cached it here; an edge that never served it reads R2, which has it no more
      await caches.default.delete(`${RELAY}${s.url}`);
      await expectXrpcError(await download(s.url), 404, "NotFound");
    }
  });
});
