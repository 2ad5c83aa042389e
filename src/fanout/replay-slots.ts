// A replay holds up to a read chunk (~1 MB) in the Fanout's memory and pushes the log into a
// socket at the modelled consumer rate, so a Fanout runs only a few at a time. The rest wait
// in line, first come first served: a released slot is handed straight to the oldest waiter,
// so a newcomer never overtakes a consumer that has been waiting.

export type ReleaseSlot = () => void;

export class ReplaySlots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    this.#free = Math.max(1, limit);
  }

  /** Resolves when a slot is this caller's; call the returned function once to give it back. */
  async acquire(): Promise<ReleaseSlot> {
    if (this.#free > 0 && this.#waiting.length === 0) {
      this.#free--;
    } else {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    };
  }

  /** Callers waiting for a slot. */
  get queued(): number {
    return this.#waiting.length;
  }
}
