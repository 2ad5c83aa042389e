import {
  decodeIndex,
  decodeTrailer,
  type SegmentIndexEntry,
  type SegmentTrailer,
  seekOffset,
  TRAILER_BYTES,
  wholeRecordsPrefix,
} from "../log/segment";
import { concatBytes } from "../protocol/bytes";

// Reads sealed segments from R2 in fixed, aligned windows so that every reader asks for the
// same byte ranges and the edge cache (Cache API) can serve them: segments are immutable, so a
// cached window never goes stale. A reader holds one window at a time: memory per replaying
// consumer is bounded by WINDOW_BYTES no matter how large the segment is.

export const WINDOW_BYTES = 1024 * 1024;
const CACHE_ORIGIN = "https://segments.freehose.internal/";

type SegmentMeta = { trailer: SegmentTrailer; index: SegmentIndexEntry[] };

async function cachedRange(
  bucket: R2Bucket,
  key: string,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const cache = typeof caches === "undefined" ? undefined : caches.default;
  const cacheKey = new Request(`${CACHE_ORIGIN}${key}?offset=${offset}&length=${length}`);
  const hit = await cache?.match(cacheKey);
  if (hit) return new Uint8Array(await hit.arrayBuffer());
  const object = await bucket.get(key, { range: { offset, length } });
  if (!object) throw new Error(`segment ${key} is missing from R2`);
  const bytes = new Uint8Array(await object.arrayBuffer());
  if (cache) {
    await cache.put(
      cacheKey,
      new Response(bytes, { headers: { "Cache-Control": "public, max-age=31536000, immutable" } }),
    );
  }
  return bytes;
}

export class SegmentReader {
  readonly #metas = new Map<string, SegmentMeta>();

  constructor(private readonly bucket: R2Bucket) {}

  async #meta(key: string, size: number): Promise<SegmentMeta> {
    const known = this.#metas.get(key);
    if (known) return known;
    const trailer = decodeTrailer(
      await cachedRange(this.bucket, key, size - TRAILER_BYTES, TRAILER_BYTES),
    );
    const indexLength = size - TRAILER_BYTES - trailer.indexOffset;
    const index = decodeIndex(
      await cachedRange(this.bucket, key, trailer.indexOffset, indexLength),
    );
    const meta = { trailer, index };
    if (this.#metas.size > 64) this.#metas.clear();
    this.#metas.set(key, meta);
    return meta;
  }

  /**
   * Yields runs of whole records of segment `key` (total size `size`) starting at the indexed
   * record at or before the first seq > afterSeq. Callers drop records with seq <= afterSeq.
   */
  async *read(key: string, size: number, afterSeq: number): AsyncGenerator<Uint8Array> {
    const { trailer, index } = await this.#meta(key, size);
    const end = trailer.indexOffset;
    let offset = seekOffset(index, afterSeq);
    let carry: Uint8Array = new Uint8Array(0);
    while (offset < end) {
      const windowStart = Math.floor(offset / WINDOW_BYTES) * WINDOW_BYTES;
      const windowLength = Math.min(WINDOW_BYTES, end - windowStart);
      const window = await cachedRange(this.bucket, key, windowStart, windowLength);
      const fresh = window.subarray(offset - windowStart);
      const bytes = carry.byteLength === 0 ? fresh : concatBytes([carry, fresh]);
      const whole = wholeRecordsPrefix(bytes);
      if (whole.byteLength > 0) yield whole;
      carry = bytes.slice(whole.byteLength);
      offset = windowStart + windowLength;
    }
    if (carry.byteLength > 0) throw new Error(`segment ${key} ends inside a record`);
  }
}
