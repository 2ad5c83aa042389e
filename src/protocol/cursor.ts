// Consumer cursor rules for subscribeRepos, as the reference PDS applies them (DESIGN.md):
// no cursor = live only; cursor N = every event with seq > N, then live; N beyond the head =
// FutureCursor error; N older than what is retained = #info OutdatedCursor, then everything
// from the oldest retained event. Cursor 0 means "from the oldest retained event".

export type CursorParam = { ok: true; cursor: number | null } | { ok: false; message: string };

/** Parses the `cursor` query parameter: absent, or a non-negative integer. */
export function parseCursorParam(value: string | null): CursorParam {
  if (value === null || value === "") return { ok: true, cursor: null };
  if (!/^[0-9]{1,16}$/.test(value))
    return { ok: false, message: "cursor must be a non-negative integer" };
  const cursor = Number(value);
  if (!Number.isSafeInteger(cursor)) return { ok: false, message: "cursor is too large" };
  return { ok: true, cursor };
}

export type LogBounds = {
  /** Seq of the newest event, or firstSeq - 1 when the log is empty. */
  headSeq: number;
  /** Events with seq <= trimmedThrough were deleted by retention (0 if none ever were). */
  trimmedThrough: number;
};

export type StreamStart =
  | { kind: "live"; afterSeq: number }
  | { kind: "replay"; afterSeq: number; outdated: boolean }
  | { kind: "future" };

export function decideStreamStart(cursor: number | null, bounds: LogBounds): StreamStart {
  if (cursor === null) return { kind: "live", afterSeq: bounds.headSeq };
  if (cursor > bounds.headSeq) return { kind: "future" };
  if (cursor < bounds.trimmedThrough)
    return { kind: "replay", afterSeq: bounds.trimmedThrough, outdated: true };
  return { kind: "replay", afterSeq: cursor, outdated: false };
}
