// Protocol limits, from the com.atproto.sync.subscribeRepos lexicon and the reference relay
// (indigo cmd/relay). One home so that every check and every doc quotes the same numbers.

/** Lexicon: `#commit.blocks` maxLength. */
export const MAX_COMMIT_BLOCKS_BYTES = 2_000_000;
/** Lexicon: `#commit.ops` maxLength. */
export const MAX_COMMIT_OPS = 200;
/** Lexicon: `#sync.blocks` maxLength. */
export const MAX_SYNC_BLOCKS_BYTES = 10_000;
/** The reference relay reads at most ~5 MB per upstream message. */
export const MAX_FRAME_BYTES = 5_000_000;
/** Blocks in one CAR slice: a 2 MB CAR cannot hold more than this many minimal blocks. */
export const MAX_CAR_BLOCKS = 20_000;
/** A rev (TID) may lie at most this far in the future (reference relay: a few minutes). */
export const FUTURE_REV_TOLERANCE_MS = 5 * 60 * 1000;
/** Nesting depth of decoded DAG-CBOR: records are shallow; hostile input is not. */
export const MAX_CBOR_DEPTH = 64;

// Per message type, the largest frame the lexicon's fields allow, so that a host cannot make the
// relay decode (and, before re-encoding, store and replay) megabytes attached to a small event.
// Each is the lexicon's bounded fields (a DID is at most 2,048 characters, a handle 253, a
// datetime 64, `#sync` blocks 10,000 bytes) with room to spare for fields a newer lexicon may
// add; those are decoded but not forwarded (frame.ts canonicalEventFrame).
/** `#sync`: blocks (10,000 B) + did + rev + time + seq, about 12.2 KB at most. */
export const MAX_SYNC_FRAME_BYTES = 16_384;
/** `#identity`: did + handle + time + seq, about 2.4 KB at most. */
export const MAX_IDENTITY_FRAME_BYTES = 8_192;
/** `#account`: did + time + active + status + seq, about 2.2 KB at most. */
export const MAX_ACCOUNT_FRAME_BYTES = 8_192;
/** `#info` and error frames (not relayed; their text is logged and shown as a host's error). */
export const MAX_INFO_FRAME_BYTES = 8_192;
/** `#account` status: an open set of short names (`deactivated`, `takendown`, ...). */
export const MAX_ACCOUNT_STATUS_CHARS = 64;
/** `#info` `name` and error frames' `error`: short names (`OutdatedCursor`, `FutureCursor`). */
export const MAX_MESSAGE_NAME_CHARS = 64;
