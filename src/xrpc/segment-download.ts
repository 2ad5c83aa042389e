import type { Config } from "../config";
import type { Env } from "../env";
import { SEGMENT_KEY_PREFIX, SEGMENT_NAME_RE } from "../log/segment";
import { parseByteRange, sliceStream } from "./byte-range";
import { SERVER_HEADER, XrpcError } from "./errors";
import { requireMethod } from "./params";

// GET /segments/<name>: one sealed segment's bytes (docs/segment-format.md), for clients that
// replay history over HTTP (GET /segments plans which). Segments never change once written, so
// the whole object is kept in the Cache API under the relay's own URL with a year's max-age: a
// second download at the same edge is served from there and does not touch R2 (class B reads
// are billed per request, docs/cost.md). Ranges and If-None-Match are answered by the cache on a
// hit (Cloudflare's Cache API honours both on match), and here on a miss, which always reads the
// whole object once so that the cache is filled whatever the first request asked for.

export const SEGMENT_PATH_PREFIX = "/segments/";
const CONTENT_TYPE = "application/vnd.freehose.segment";
const IMMUTABLE = "public, max-age=31536000, immutable";
const SINGLE_RANGE_RE = /^bytes=\d*-\d*$/;

function segmentHeaders(object: R2Object): Headers {
  return new Headers({
    "Content-Type": CONTENT_TYPE,
    "Cache-Control": IMMUTABLE,
    ETag: object.httpEtag,
    "Accept-Ranges": "bytes",
    "Content-Length": String(object.size),
    Server: SERVER_HEADER,
  });
}

/** If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/ prefixes do not matter. */
function etagMatches(ifNoneMatch: string, httpEtag: string): boolean {
  if (ifNoneMatch.trim() === "*") return true;
  const bare = (tag: string) => tag.trim().replace(/^W\//, "");
  return ifNoneMatch.split(",").some((tag) => bare(tag) === bare(httpEtag));
}

function withoutBody(response: Response): Response {
  return new Response(null, { status: response.status, headers: response.headers });
}

export async function handleSegmentDownload(
  request: Request,
  env: Env,
  _config: Config,
  ctx?: ExecutionContext,
): Promise<Response> {
  requireMethod(request, "GET");
  const url = new URL(request.url);
  const name = url.pathname.slice(SEGMENT_PATH_PREFIX.length);
  if (!SEGMENT_NAME_RE.test(name))
    throw new XrpcError(404, "NotFound", "a segment name is its first seq in 20 digits");
  const head = request.method === "HEAD";
  const range = request.headers.get("Range");
  const ifNoneMatch = request.headers.get("If-None-Match");
  const cache = typeof caches === "undefined" ? undefined : caches.default;
  // one cache entry per segment, whatever the query string or method
  const cacheKey = `${url.origin}${SEGMENT_PATH_PREFIX}${name}`;

  if (cache) {
    const conditions = new Headers();
    if (range && SINGLE_RANGE_RE.test(range.trim())) conditions.set("Range", range);
    if (ifNoneMatch) conditions.set("If-None-Match", ifNoneMatch);
    const hit = await cache.match(new Request(cacheKey, { headers: conditions }));
    if (hit) return head ? withoutBody(hit) : hit;
  }

  const object = await env.EVENT_LOG.get(`${SEGMENT_KEY_PREFIX}${name}`);
  if (!object)
    throw new XrpcError(404, "NotFound", `segment ${name} is not retained (or never existed)`);
  const headers = segmentHeaders(object);
  let body: ReadableStream<Uint8Array> = object.body;
  if (cache) {
    const [forClient, forCache] = object.body.tee();
    body = forClient;
    // a failed fill costs the next download an R2 read, nothing more
    const put = cache
      .put(
        cacheKey,
        new Response(forCache.pipeThrough(new FixedLengthStream(object.size)), { headers }),
      )
      .catch((err: unknown) =>
        console.warn(
          JSON.stringify({ msg: "segment cache fill failed", name, error: String(err) }),
        ),
      );
    if (ctx) ctx.waitUntil(put);
    else await put;
  }

  if (ifNoneMatch && etagMatches(ifNoneMatch, object.httpEtag)) {
    await body.cancel();
    headers.delete("Content-Length");
    return new Response(null, { status: 304, headers });
  }
  const wanted = parseByteRange(range, object.size);
  switch (wanted.kind) {
    case "whole":
      if (head) {
        await body.cancel();
        return new Response(null, { headers });
      }
      return new Response(body.pipeThrough(new FixedLengthStream(object.size)), { headers });
    case "unsatisfiable":
      await body.cancel();
      headers.delete("Content-Length");
      headers.set("Content-Range", `bytes */${object.size}`);
      return new Response(null, { status: 416, headers });
    case "range": {
      const length = wanted.end - wanted.start + 1;
      headers.set("Content-Length", String(length));
      headers.set("Content-Range", `bytes ${wanted.start}-${wanted.end}/${object.size}`);
      if (head) {
        await body.cancel();
        return new Response(null, { status: 206, headers });
      }
      const slice = sliceStream(body, wanted.start, wanted.end);
      return new Response(slice.pipeThrough(new FixedLengthStream(length)), {
        status: 206,
        headers,
      });
    }
    default: {
      const never: never = wanted;
      return never;
    }
  }
}
