// A token bucket per host: `perSecond` tokens a second, bursts up to `burst`. The reference relay
// makes a host wait rather than dropping its events; we do the same without buffering: when the
// bucket is empty the ingester stops reading the host's socket (disconnects, keeping its cursor)
// and resumes by cursor once tokens are back, so nothing is lost and nothing piles up.

export type TokenBucket = { tokens: number; atMs: number };

export function fullBucket(burst: number, nowMs: number): TokenBucket {
  return { tokens: burst, atMs: nowMs };
}

export function refill(
  bucket: TokenBucket,
  nowMs: number,
  perSecond: number,
  burst: number,
): TokenBucket {
  const tokens = Math.min(burst, bucket.tokens + ((nowMs - bucket.atMs) / 1000) * perSecond);
  return { tokens, atMs: nowMs };
}

/** Takes one token if there is one. */
export function take(
  bucket: TokenBucket,
  nowMs: number,
  perSecond: number,
  burst: number,
): { ok: boolean; bucket: TokenBucket } {
  const current = refill(bucket, nowMs, perSecond, burst);
  if (current.tokens < 1) return { ok: false, bucket: current };
  return { ok: true, bucket: { tokens: current.tokens - 1, atMs: nowMs } };
}

/** Milliseconds until `needed` tokens are available. */
export function waitForTokens(bucket: TokenBucket, needed: number, perSecond: number): number {
  if (bucket.tokens >= needed) return 0;
  return Math.ceil(((needed - bucket.tokens) / perSecond) * 1000);
}
