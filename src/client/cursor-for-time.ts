import { fetchPlan, PlanError } from "./plan";
import { type AbortSignalLike, defaultFetch, type FetchFunction, httpBase } from "./runtime";

// "Everything since 10:00": the plan's segment times say where to start. The cursor returned is
// just before the first segment whose last event is at or after `time`, so the replay may begin
// with up to one segment of older events (a consumer that needs the exact boundary compares
// each event's `time`). When every sealed event is older, it is the plan's last cursor, and the
// socket serves the rest.

export type CursorForTimeOptions = {
  service: string;
  /** A Date or milliseconds since the epoch. */
  time: Date | number;
  fetch?: FetchFunction;
  signal?: AbortSignalLike;
};

export async function cursorForTime(options: CursorForTimeOptions): Promise<number> {
  const target = typeof options.time === "number" ? options.time : options.time.getTime();
  const request = {
    base: httpBase(options.service),
    fetch: options.fetch ?? defaultFetch(),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  let after = 0;
  for (;;) {
    const plan = await fetchPlan(request, after);
    if (!plan) throw new PlanError("the relay serves no replay plan (GET /segments)", 404);
    for (const segment of plan.segments) {
      if (Date.parse(segment.lastTime) >= target) return Math.max(0, segment.firstSeq - 1);
    }
    const next = Math.max(after, plan.cursor, plan.segments.at(-1)?.lastSeq ?? after);
    if (plan.segments.length === 0 || next <= after) return Math.max(after, plan.cursor);
    after = next;
  }
}
