import { recordsAfter } from "../log/records";

// The last few live batches a Fanout received, so a consumer finishing its replay can join the
// live stream at once: the batches that arrived while its last storage read was in flight are
// here, and switching happens with no await in between (a DO runs one thing at a time).

export type Batch = { records: Uint8Array; firstSeq: number; lastSeq: number };

export class RecentBatches {
  readonly #batches: Batch[] = [];
  #bytes = 0;

  constructor(private readonly maxBytes: number) {}

  push(batch: Batch): void {
    this.#batches.push(batch);
    this.#bytes += batch.records.byteLength;
    while (this.#bytes > this.maxBytes && this.#batches.length > 1) {
      const dropped = this.#batches.shift() as Batch;
      this.#bytes -= dropped.records.byteLength;
    }
  }

  /**
   * Records with seq > afterSeq if the kept batches cover afterSeq + 1 onward with no hole;
   * null if they start later (the caller must read storage first). Empty when nothing is newer.
   */
  after(afterSeq: number): Uint8Array[] | null {
    const newer = this.#batches.filter((b) => b.lastSeq > afterSeq);
    if (newer.length === 0) return [];
    let expected = afterSeq + 1;
    const out: Uint8Array[] = [];
    for (const b of newer) {
      if (b.firstSeq > expected) return null;
      out.push(recordsAfter(b.records, expected - 1));
      expected = b.lastSeq + 1;
    }
    return out;
  }
}
