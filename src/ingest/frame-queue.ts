// The frames a host's socket delivered that wait for validation, oldest first. One array and a
// read index rather than a promise per frame: a queued frame then costs its bytes and a slot,
// not the ~860 B of closure and promise links a `.then()` chain per frame held (measured in
// bench/ingester-memory.ts), and taking the next one is O(1) (Array#shift copies large arrays).

/** Frames read past before the array is compacted (so a long queue never holds dead slots). */
const COMPACT_AFTER = 1_024;

export class FrameQueue {
  #frames: (Uint8Array | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#frames.length - this.#head;
  }

  push(frame: Uint8Array): void {
    this.#frames.push(frame);
  }

  /** The oldest frame, removed from the queue; undefined when empty. */
  shift(): Uint8Array | undefined {
    if (this.#head >= this.#frames.length) return undefined;
    const frame = this.#frames[this.#head];
    this.#frames[this.#head] = undefined;
    this.#head++;
    if (this.#head === this.#frames.length) {
      this.#frames = [];
      this.#head = 0;
    } else if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head);
      this.#head = 0;
    }
    return frame;
  }
}
