import { recordsAfter } from "../log/records";
import type { Delivery } from "./delivery-queues";

// The last few live batches a Fanout received, so a consumer finishing its replay can join the
// live stream at once: the batches that arrived while its last storage read was in flight are
// here, and switching happens with no await in between (a DO runs one thing at a time).

export type Batch = Delivery;

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
   * The batches' records with seq > afterSeq (each with its batch's time anchors) if the kept
   * batches cover afterSeq + 1 onward with no hole; null if they start later (the caller must
   * read storage first). Empty when nothing is newer.
   */
  after(afterSeq: number): Batch[] | null {
    const newer = this.#batches.filter((b) => b.lastSeq > afterSeq);
    if (newer.length === 0) return [];
    let expected = afterSeq + 1;
    const out: Batch[] = [];
    for (const b of newer) {
      if (b.firstSeq > expected) return null;
      out.push({ ...b, records: recordsAfter(b.records, expected - 1), firstSeq: expected });
      expected = b.lastSeq + 1;
    }
    return out;
  }
}
