// Whether an ingester takes one more frame from a host's socket, from what waits in the object.
// Slowing a host down never throws work away (host-ingester.ts): a frame refused here is not
// taken at all, the host's socket is closed, what it already queued is still processed, and it
// is read again from the last frame kept. These limits are what keeps an ingester's memory
// bounded at any backlog, however many hosts it carries (docs/behaviours.md, "Memory").

/**
 * Frames waiting for validation per host before the host stops being read. Each stop costs a
 * reconnect, and workerd reads a socket as fast as it can dispatch its messages, so every frame
 * the host had already sent past the limit is received and not taken, then sent again after the
 * reconnect: ~30 µs of the ingester's thread each (docs/benchmarks.md). At 500, a big host's
 * backlog of 1.5 KB commits stopped every 0.75 MB and up to ten frames were received for each one
 * kept; memory is bounded by bytes (below), so the count only keeps tiny frames from piling up.
 */
export const MAX_QUEUED_FRAMES = 5_000;
/** ...and their bytes: frames may be up to 5 MB each, an object has ~128 MB. */
export const MAX_QUEUED_BYTES = 8_000_000;
/**
 * What a queued frame holds in the heap besides its bytes (its Uint8Array and ArrayBuffer objects
 * and the queue's slot; bench/ingester-memory.ts measures it), counted with its bytes against the
 * limits, so that many small frames cannot hold more memory than the limits say.
 */
export const QUEUED_FRAME_OVERHEAD_BYTES = 256;
/**
 * Bytes of frames waiting for validation in the whole object, over all its hosts: a shard of
 * hundreds of small hosts that all send a backlog at once must not queue 8 MB each. 16 MB is
 * 5-10 s of validation work at the drain rates measured (docs/benchmarks.md).
 */
export const MAX_OBJECT_QUEUED_BYTES = 16_000_000;
/** Unacknowledged accepted bytes before sockets stop being read (the Sequencer is behind). */
export const MAX_PENDING_BYTES = 8_000_000;

/** What a frame of `byteLength` bytes counts against the queue limits while it waits. */
export function queuedCost(byteLength: number): number {
  return byteLength + QUEUED_FRAME_OVERHEAD_BYTES;
}

/** What waits in the object when a frame of `frameBytes` arrives from a host. */
export type IntakeState = {
  /** Frames and bytes the host has queued. */
  hostFrames: number;
  hostBytes: number;
  /** Bytes queued by all the object's hosts (this one included). */
  objectBytes: number;
  /** The object's limit (INGEST_QUEUE_MAX_BYTES, default MAX_OBJECT_QUEUED_BYTES). */
  objectMaxBytes: number;
  /** Accepted bytes not yet acknowledged by the Sequencer. */
  pendingBytes: number;
};

export type IntakeVerdict =
  | { take: true }
  /** `sequencer`: acknowledgements are behind; `host`: this host's queue is full; `object`: all
   * hosts' queues together are full. */
  | { take: false; full: "sequencer" | "host" | "object" };

/**
 * A frame is always taken into an empty queue (a frame larger than a limit must still be
 * processed some time), so each limit may be passed by at most one frame.
 */
export function intakeVerdict(frameBytes: number, state: IntakeState): IntakeVerdict {
  if (state.pendingBytes > MAX_PENDING_BYTES) return { take: false, full: "sequencer" };
  if (
    state.hostFrames >= MAX_QUEUED_FRAMES ||
    (state.hostBytes > 0 && state.hostBytes + frameBytes > MAX_QUEUED_BYTES)
  )
    return { take: false, full: "host" };
  if (state.objectBytes > 0 && state.objectBytes + frameBytes > state.objectMaxBytes)
    return { take: false, full: "object" };
  return { take: true };
}

/**
 * Whether hosts stopped because the object was full may be read again: once half of it is free,
 * so that they do not reconnect one frame at a time at the limit.
 */
export function objectHasRoom(objectBytes: number, objectMaxBytes: number): boolean {
  return objectBytes <= objectMaxBytes / 2;
}
