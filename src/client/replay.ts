import { decodeFrame, type InfoBody } from "../protocol/frame";
import { frameType, isEventType, type ReplayEvent, replayEvent } from "./events";
import { socketMessages } from "./live";
import { mapOrdered } from "./ordered";
import { type PlannedSegment, type PlanRequest, planSegments } from "./plan";
import {
  type AbortSignalLike,
  defaultFetch,
  defaultWebSocket,
  type FetchFunction,
  httpBase,
  newAbortController,
  resolveUrl,
  sleep,
  type WebSocketConstructor,
  wsBase,
} from "./runtime";
import { segmentRecordsAfter } from "./segment-records";
import { SeqOrder } from "./seq-order";
import type { Verifier, VerifyOptions } from "./verify";

// replay(): history over HTTP, then live over the socket, as one stream in seq order.
//
//   plan      GET /segments?after=<last>, page after page
//   download  the planned segments, `parallelism` at a time, consumed strictly in order
//   re-plan   once the plan is used up, ask again from the last seq yielded: segments sealed
//             while we downloaded are fetched over HTTP too; repeat until a plan is empty
//   live      subscribeRepos?cursor=<last seq yielded>: the relay replays whatever lies after
//             it (hot log, or a segment sealed since the last plan) and continues live
//
// The hand-over needs no coordination with sealing: the socket's cursor is the last seq this
// client yielded, so nothing after it can be missed, and SeqOrder drops anything at or below
// it and stops at any jump. Nothing is yielded twice and nothing is skipped silently.

export type ReplayOptions = {
  /** The relay: http(s):// or ws(s)://, e.g. "https://relay.example". */
  service: string;
  /** Yield events with seq > cursor (0: everything the relay still has). */
  cursor: number;
  /** Segments downloaded at once (default 4); each is held in memory until consumed (≤ 16 MiB). */
  parallelism?: number;
  /** Check every event with the relay's protocol core (see verify.ts); true uses plc.directory. */
  verify?: boolean | VerifyOptions;
  /** A WebSocket constructor (default globalThis.WebSocket; in Node 20, pass the `ws` package's). */
  WebSocket?: WebSocketConstructor;
  fetch?: FetchFunction;
  /** Ends the iteration (without an error) and cancels downloads. */
  signal?: AbortSignalLike;
  /** Stop after history: do not open the socket (for a bounded backfill). */
  historyOnly?: boolean;
  /** `#info` messages of the socket, e.g. OutdatedCursor when the cursor is older than the window. */
  onInfo?: (info: InfoBody) => void;
  /** Segments per plan page (default: the relay's). */
  planLimit?: number;
};

/** An error frame of the socket (FutureCursor, ConsumerTooSlow, ...). */
export class ReplayStreamError extends Error {
  override readonly name = "ReplayStreamError";
  constructor(
    readonly error: string,
    readonly lastSeq: number,
    message?: string,
  ) {
    super(`${error}${message ? `: ${message}` : ""} (after seq ${lastSeq})`);
  }
}

const DOWNLOAD_ATTEMPTS = 3;
/** Plans in a row whose segments were gone before they could be downloaded. */
const MAX_GONE_REPLANS = 3;

/**
 * A planned segment answered 404: retention deleted it after the plan was made (the relay takes
 * segments out of its plans before deleting them, docs/behaviours.md, Retention).
 */
class SegmentGone extends Error {
  override readonly name = "SegmentGone";
}

/** A download that failed in a way retrying will not change (a 4xx other than 404). */
class DownloadRefused extends Error {
  override readonly name = "DownloadRefused";
}

async function download(
  fetch: FetchFunction,
  url: string,
  signal: AbortSignalLike,
): Promise<Uint8Array> {
  for (let attempt = 1; ; attempt++) {
    let failure: string;
    try {
      const res = await fetch(url, { signal });
      if (res.ok) return new Uint8Array(await res.arrayBuffer());
      failure = `HTTP ${res.status}`;
      await res.text().catch(() => "");
      if (res.status === 404) throw new SegmentGone(`GET ${url}: ${failure}`);
      if (res.status < 500) throw new DownloadRefused(`GET ${url}: ${failure}`);
    } catch (err) {
      if (signal.aborted || err instanceof SegmentGone || err instanceof DownloadRefused) throw err;
      failure = String(err);
    }
    if (attempt >= DOWNLOAD_ATTEMPTS)
      throw new Error(`GET ${url}: ${failure} (${attempt} attempts)`);
    await sleep(200 * attempt);
  }
}

/** What the two phases of a replay share. */
type ReplayState = {
  options: ReplayOptions;
  fetch: FetchFunction;
  base: string;
  order: SeqOrder;
  verify: Verifier | null;
  /** Cancels plans and downloads (the consumer stopped, or the caller aborted). */
  downloads: AbortSignalLike;
  aborted: () => boolean;
};

/** Sealed history over HTTP: plan, download in parallel, yield in order, plan again. */
async function* historyEvents(state: ReplayState): AsyncGenerator<ReplayEvent> {
  const { options, fetch, base, order, verify } = state;
  const request: PlanRequest = {
    base,
    fetch,
    signal: state.downloads,
    ...(options.planLimit === undefined ? {} : { limit: options.planLimit }),
  };
  let goneReplans = 0;
  for (;;) {
    let planned = 0;
    const segments = mapOrdered(
      planSegments(request, order.last),
      async (segment: PlannedSegment) => ({
        segment,
        bytes: await download(fetch, resolveUrl(base, segment.url), state.downloads),
      }),
      options.parallelism ?? 4,
    );
    try {
      for await (const { segment, bytes } of segments) {
        planned++;
        const source = `segment ${segment.url}`;
        for (const record of segmentRecordsAfter(bytes, order.last, segment)) {
          const type = frameType(record.frame);
          if (!isEventType(type))
            throw new Error(`segment record ${record.seq} is not an event (${String(type)})`);
          if (!order.admit(record.seq, source)) continue;
          const event = replayEvent(record.seq, type, record.frame, "segment");
          if (verify) await verify(event);
          yield event;
          if (state.aborted()) return;
        }
      }
    } catch (err) {
      if (state.aborted()) return;
      // plan again from the last seq yielded: the new plan starts at the oldest segment left,
      // which SeqOrder accepts only before the first event (otherwise it is a gap, reported)
      if (!(err instanceof SegmentGone) || ++goneReplans > MAX_GONE_REPLANS) throw err;
      continue;
    }
    goneReplans = 0;
    if (planned === 0 || state.aborted()) return;
  }
}

/** subscribeRepos from the last seq yielded: whatever history is left, then live. */
async function* liveEvents(state: ReplayState): AsyncGenerator<ReplayEvent> {
  const { options, order, verify } = state;
  const url = `${wsBase(options.service)}/xrpc/com.atproto.sync.subscribeRepos?cursor=${order.last}`;
  const messages = socketMessages(
    url,
    options.WebSocket ?? defaultWebSocket(),
    () => order.last,
    options.signal,
  );
  for await (const frame of messages) {
    const type = frameType(frame);
    if (type === null) {
      const body = decodeFrame(frame).body as { error: string; message?: string };
      throw new ReplayStreamError(body.error, order.last, body.message);
    }
    if (type === "#info") {
      options.onInfo?.(decodeFrame(frame).body as InfoBody);
      continue;
    }
    // a message type this client does not know is skipped, as the lexicon asks of consumers
    if (!isEventType(type)) continue;
    const body = decodeFrame(frame).body as { seq: number };
    if (!order.admit(body.seq, "subscribeRepos")) continue;
    const event = replayEvent(body.seq, type, frame, "live", body);
    if (verify) await verify(event);
    yield event;
  }
}

export async function* replay(options: ReplayOptions): AsyncGenerator<ReplayEvent> {
  if (!Number.isSafeInteger(options.cursor) || options.cursor < 0)
    throw new RangeError(`cursor must be a non-negative integer, got ${options.cursor}`);
  const fetch = options.fetch ?? defaultFetch();
  let verify: Verifier | null = null;
  if (options.verify) {
    const { createVerifier } = await import("./verify");
    verify = createVerifier(options.verify === true ? {} : options.verify, fetch);
  }
  const downloads = newAbortController();
  const stopDownloads = () => downloads.abort();
  options.signal?.addEventListener("abort", stopDownloads, { once: true });
  const state: ReplayState = {
    options,
    fetch,
    base: httpBase(options.service),
    order: new SeqOrder(options.cursor),
    verify,
    downloads: downloads.signal,
    aborted: () => options.signal?.aborted === true,
  };
  try {
    yield* historyEvents(state);
    if (options.historyOnly || state.aborted()) return;
    yield* liveEvents(state);
  } finally {
    options.signal?.removeEventListener("abort", stopDownloads);
    // a consumer that stops early leaves downloads in flight: they are cancelled here
    downloads.abort();
  }
}
