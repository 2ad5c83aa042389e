// The client's one ordering rule, for segments and socket alike: yield a seq only if it is
// above the last one yielded (anything at or below is a duplicate of what was already yielded,
// e.g. the socket replaying what the last segment held), and only if it is the next one.
// The relay's seqs are contiguous (docs/behaviours.md: "nothing is sequenced that is not
// served"), so a jump means events the relay served elsewhere are missing here: the client
// stops with ReplayGapError rather than hand on a stream with a hole. Re-planning would not
// help (the plan and the socket read the same log), and the error carries the last seq
// yielded, so a consumer can resume with `replay({ cursor: error.lastSeq })`.
//
// The first event is exempt: a cursor older than the relay's replay window starts at the oldest
// retained event (the socket says so with `#info OutdatedCursor`), and a relay started at
// FIRST_SEQ > cursor + 1 begins there.

export class ReplayGapError extends Error {
  override readonly name = "ReplayGap";
  constructor(
    readonly lastSeq: number,
    readonly receivedSeq: number,
    readonly source: string,
  ) {
    super(
      `seq ${receivedSeq} from ${source} after ${lastSeq}: ${receivedSeq - lastSeq - 1} missing`,
    );
  }
}

export class SeqOrder {
  #last: number;
  #started = false;

  constructor(cursor: number) {
    this.#last = cursor;
  }

  /** The last seq yielded, or the starting cursor. */
  get last(): number {
    return this.#last;
  }

  /** True if `seq` is to be yielded (and records it), false for a duplicate; throws on a gap. */
  admit(seq: number, source: string): boolean {
    if (seq <= this.#last) return false;
    if (this.#started && seq !== this.#last + 1) throw new ReplayGapError(this.#last, seq, source);
    this.#started = true;
    this.#last = seq;
    return true;
  }
}
