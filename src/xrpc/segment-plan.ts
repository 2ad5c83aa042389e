import type { SegmentPlan as ClientSegmentPlan, PlannedSegment } from "../client/plan";
import { segmentName } from "../log/segment";
import type { SegmentEntry } from "../sequence/segment-index";
import { sequencerStub } from "../stubs";
import { json } from "./errors";
import { intParam, requireMethod, type XrpcHandler } from "./params";
import { SEGMENT_PATH_PREFIX } from "./segment-download";

// GET /segments?after=N&limit=M: which sealed segments hold the history after seq N, for a
// client that downloads them over HTTP (GET /segments/<name>) and then opens subscribeRepos at
// `cursor`. The shape is a public contract (README, docs/segment-format.md); one Sequencer
// request per plan, reading about `limit` index rows.

export const DEFAULT_PLAN_SEGMENTS = 100;
export const MAX_PLAN_SEGMENTS = 1000;

/**
 * The plan as the client reads it (src/client/plan.ts holds the contract, one definition for
 * both sides), plus what only the server adds.
 */
export type SegmentPlan = ClientSegmentPlan & {
  /**
   * The first seq of the oldest retained segment (null when none is): when it is above after + 1,
   * the seqs in between are past the replay window and gone, as subscribeRepos' OutdatedCursor says.
   */
  oldestSeq: number | null;
};

function plannedSegment(entry: SegmentEntry): PlannedSegment {
  return {
    firstSeq: entry.firstSeq,
    lastSeq: entry.lastSeq,
    firstTime: new Date(entry.firstMs).toISOString(),
    lastTime: new Date(entry.lastMs).toISOString(),
    bytes: entry.bytes,
    url: `${SEGMENT_PATH_PREFIX}${segmentName(entry.firstSeq)}`,
  };
}

export const handleSegmentPlan: XrpcHandler = async (request, env) => {
  requireMethod(request, "GET");
  const url = new URL(request.url);
  const after = intParam(url, "after", 0, Number.MAX_SAFE_INTEGER, 0);
  const limit = intParam(url, "limit", 1, MAX_PLAN_SEGMENTS, DEFAULT_PLAN_SEGMENTS);
  const page = await sequencerStub(env).listSegments(after, limit);
  const plan: SegmentPlan = {
    segments: page.segments.map(plannedSegment),
    sealedThrough: page.sealedThrough,
    cursor: page.segments.at(-1)?.lastSeq ?? after,
    oldestSeq: page.oldestSeq,
  };
  return json(plan);
};
