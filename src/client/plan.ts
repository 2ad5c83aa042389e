import type { AbortSignalLike, FetchFunction } from "./runtime";

// The relay's replay plan, `GET /segments?after=N&limit=M` (README, "Replay history over HTTP"):
// the sealed segments holding every sealed seq > N, in seq order, and the cursor to open
// subscribeRepos with after them. A long history comes in pages: the next page is asked for
// after the plan's cursor, until a page lists no segment.

export type PlannedSegment = {
  firstSeq: number;
  lastSeq: number;
  /** ISO 8601 times of the first and last event. */
  firstTime: string;
  lastTime: string;
  bytes: number;
  /** Absolute, or relative to the relay. */
  url: string;
};

export type SegmentPlan = {
  segments: PlannedSegment[];
  /** Highest sealed seq. */
  sealedThrough: number;
  /** Where subscribeRepos takes over after these segments. */
  cursor: number;
};

export class PlanError extends Error {
  override readonly name = "PlanError";
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

function isSeq(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Checks a plan's shape and order; a plan that breaks them cannot be replayed safely. */
export function parsePlan(json: unknown): SegmentPlan {
  const o = json as Record<string, unknown> | null;
  if (typeof o !== "object" || o === null || !Array.isArray(o.segments))
    throw new PlanError("plan has no segments array");
  if (!isSeq(o.sealedThrough) || !isSeq(o.cursor))
    throw new PlanError("plan needs integer sealedThrough and cursor");
  const segments: PlannedSegment[] = [];
  for (const raw of o.segments as unknown[]) {
    const s = raw as Record<string, unknown>;
    if (
      typeof s !== "object" ||
      s === null ||
      !isSeq(s.firstSeq) ||
      !isSeq(s.lastSeq) ||
      s.lastSeq < s.firstSeq ||
      typeof s.url !== "string" ||
      typeof s.firstTime !== "string" ||
      typeof s.lastTime !== "string" ||
      !isSeq(s.bytes)
    )
      throw new PlanError(`plan segment is malformed: ${JSON.stringify(raw).slice(0, 200)}`);
    const previous = segments.at(-1);
    if (previous && s.firstSeq <= previous.lastSeq)
      throw new PlanError(`plan segments overlap or are out of order at ${s.firstSeq}`);
    segments.push({
      firstSeq: s.firstSeq,
      lastSeq: s.lastSeq,
      firstTime: s.firstTime,
      lastTime: s.lastTime,
      bytes: s.bytes,
      url: s.url,
    });
  }
  return { segments, sealedThrough: o.sealedThrough, cursor: o.cursor };
}

export type PlanRequest = {
  base: string;
  fetch: FetchFunction;
  signal?: AbortSignalLike;
  /** Segments per page; the relay's own default (and cap) when absent. */
  limit?: number;
};

/** One page of the plan; null when the relay does not serve plans (404: replay by socket only). */
export async function fetchPlan(request: PlanRequest, after: number): Promise<SegmentPlan | null> {
  const limit = request.limit === undefined ? "" : `&limit=${request.limit}`;
  const init = request.signal ? { signal: request.signal } : {};
  const res = await request.fetch(`${request.base}/segments?after=${after}${limit}`, init);
  if (res.status === 404) {
    await res.text().catch(() => "");
    return null;
  }
  if (!res.ok) {
    const text = await res.text().catch(() => "");
    throw new PlanError(
      `GET /segments?after=${after}: HTTP ${res.status} ${text.slice(0, 200)}`,
      res.status,
    );
  }
  return parsePlan(await res.json());
}

/**
 * Every planned segment holding a seq > after, page by page, each page asked for only when the
 * previous one has been taken (so a long plan is not fetched ahead of the downloads). Ends at
 * the first page with no segment.
 */
export async function* planSegments(
  request: PlanRequest,
  after: number,
): AsyncGenerator<PlannedSegment> {
  let from = after;
  for (;;) {
    const plan = await fetchPlan(request, from);
    if (!plan || plan.segments.length === 0) return;
    for (const segment of plan.segments) if (segment.lastSeq > from) yield segment;
    const next = Math.max(from, plan.cursor, plan.segments.at(-1)?.lastSeq ?? from);
    // a relay whose cursor does not move would have us ask for the same page for ever
    if (next <= from) return;
    from = next;
  }
}
