import { encodeDagCbor } from "../protocol/cbor";
import {
  type AccountBody,
  type CommitBody,
  decodeFrame,
  decodeFrameHeader,
  type IdentityBody,
  type SyncBody,
} from "../protocol/frame";

// What `replay` yields. `seq`, `type` and `frame` are known without decoding the body (a
// segment record carries its seq in its header, and the frame header is matched against the
// four encodings it can have), and `body` is decoded the first time it is read: strict
// DAG-CBOR decoding costs ~20 µs for a 1.5 KB commit, several times what the rest of replay
// costs, and many consumers look at `type` or `repo` of a fraction of events only.

export type ReplayEventBase = {
  /** The relay's seq. */
  readonly seq: number;
  /**
   * The frame exactly as the relay serves it (a binary subscribeRepos message). For a segment
   * event it is a view into the downloaded segment: `frame.slice()` keeps it without keeping
   * the whole segment in memory.
   */
  readonly frame: Uint8Array;
  /** Where it came from: a sealed segment over HTTP or the live socket. */
  readonly source: "segment" | "live";
};

export type ReplayEvent =
  | (ReplayEventBase & { readonly type: "#commit"; readonly body: CommitBody })
  | (ReplayEventBase & { readonly type: "#sync"; readonly body: SyncBody })
  | (ReplayEventBase & { readonly type: "#identity"; readonly body: IdentityBody })
  | (ReplayEventBase & { readonly type: "#account"; readonly body: AccountBody });

export type ReplayEventType = ReplayEvent["type"];

const EVENT_TYPES: readonly ReplayEventType[] = ["#commit", "#sync", "#identity", "#account"];

/** The DAG-CBOR header `{op: 1, t}` of each event type (canonical, so one encoding each). */
const HEADERS = EVENT_TYPES.map((t) => ({ t, bytes: encodeDagCbor({ op: 1, t }) }));

function startsWith(frame: Uint8Array, prefix: Uint8Array): boolean {
  if (frame.byteLength < prefix.byteLength) return false;
  for (let i = 0; i < prefix.byteLength; i++) if (frame[i] !== prefix[i]) return false;
  return true;
}

/** The `t` of a frame's header: `#commit` and the rest, `#info`, another type, or null for an error frame. */
export function frameType(frame: Uint8Array): string | null {
  for (const header of HEADERS) if (startsWith(frame, header.bytes)) return header.t;
  const [header] = decodeFrameHeader(frame);
  return header.op === -1 ? null : header.t;
}

export function isEventType(t: string | null): t is ReplayEventType {
  return t !== null && (EVENT_TYPES as readonly string[]).includes(t);
}

export class InvalidEventError extends Error {
  override readonly name = "InvalidEvent";
}

class LazyEvent {
  readonly seq: number;
  readonly type: ReplayEventType;
  readonly frame: Uint8Array;
  readonly source: "segment" | "live";
  #body: unknown = undefined;

  constructor(
    seq: number,
    type: ReplayEventType,
    frame: Uint8Array,
    source: "segment" | "live",
    body: unknown,
  ) {
    this.seq = seq;
    this.type = type;
    this.frame = frame;
    this.source = source;
    this.#body = body;
  }

  get body(): unknown {
    if (this.#body === undefined) {
      const decoded = decodeFrame(this.frame);
      const body = decoded.body as { seq?: unknown };
      // a segment record's seq is its header's; the frame inside must say the same
      if (body.seq !== this.seq)
        throw new InvalidEventError(
          `record seq ${this.seq} holds a frame of seq ${String(body.seq)}`,
        );
      this.#body = decoded.body;
    }
    return this.#body;
  }

  toJSON(): object {
    return { seq: this.seq, type: this.type, source: this.source, bytes: this.frame.byteLength };
  }
}

/** An event whose body is decoded when first read (unless the caller has decoded it already). */
export function replayEvent(
  seq: number,
  type: ReplayEventType,
  frame: Uint8Array,
  source: "segment" | "live",
  body?: unknown,
): ReplayEvent {
  return new LazyEvent(seq, type, frame, source, body) as unknown as ReplayEvent;
}
