// workerd gives a Durable Object no view of a WebSocket's send buffer (no `bufferedAmount`,
// cloudflare/workerd#988), so the Fanout cannot see how fast a consumer really reads. It
// models each consumer's backlog instead: bytes sent, minus what a consumer reading at the
// configured minimum rate would have drained since. Replay waits while the modelled backlog is
// above the high-water mark (so replay never outruns that rate into the runtime's buffers), and
// a live consumer whose modelled backlog passes the maximum gets ConsumerTooSlow. The model is
// deliberately generous (the default minimum rate is several times the whole network's peak),
// so it only cuts off consumers when the input itself outruns the rate we promise to serve.

export type ConsumerBudget = { backlogBytes: number; atMs: number };

export function newBudget(nowMs: number): ConsumerBudget {
  return { backlogBytes: 0, atMs: nowMs };
}

/** The modelled backlog now, after draining at `bytesPerSecond` since the last update. */
export function drain(
  budget: ConsumerBudget,
  nowMs: number,
  bytesPerSecond: number,
): ConsumerBudget {
  const drained = ((nowMs - budget.atMs) / 1000) * bytesPerSecond;
  return { backlogBytes: Math.max(0, budget.backlogBytes - drained), atMs: nowMs };
}

export function charge(
  budget: ConsumerBudget,
  bytes: number,
  nowMs: number,
  bytesPerSecond: number,
): ConsumerBudget {
  const drained = drain(budget, nowMs, bytesPerSecond);
  return { backlogBytes: drained.backlogBytes + bytes, atMs: nowMs };
}

/** Milliseconds to wait until the modelled backlog is at or under `targetBytes`. */
export function waitForBacklog(
  budget: ConsumerBudget,
  targetBytes: number,
  bytesPerSecond: number,
): number {
  if (budget.backlogBytes <= targetBytes) return 0;
  return Math.ceil(((budget.backlogBytes - targetBytes) / bytesPerSecond) * 1000);
}
