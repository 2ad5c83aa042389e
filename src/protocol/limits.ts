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
