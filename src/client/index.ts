// freehose's client: `replay()` reads a relay's history from sealed segments over HTTP, in
// parallel, and hands over to the live subscribeRepos socket with no gap and no duplicate.
// No Workers APIs: runs in Node 20+ (pass the `ws` package's WebSocket) and in browsers.
// README, "Replay history over HTTP".

export { cursorForTime } from "./cursor-for-time";
export type { ReplayEvent, ReplayEventBase, ReplayEventType } from "./events";
export { InvalidEventError } from "./events";
export { ReplayConnectionClosed } from "./live";
export {
  fetchPlan,
  PlanError,
  type PlannedSegment,
  type SegmentPlan,
} from "./plan";
export { type ReplayOptions, ReplayStreamError, replay } from "./replay";
export type {
  AbortSignalLike,
  FetchFunction,
  WebSocketConstructor,
  WebSocketLike,
} from "./runtime";
export { ReplayGapError } from "./seq-order";
export { ReplayVerificationError } from "./verification-error";
export type { VerifyOptions } from "./verify";
