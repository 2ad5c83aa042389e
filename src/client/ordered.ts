// Downloads run in parallel but their results are consumed strictly in order: `mapOrdered`
// keeps up to `parallelism` calls of `fn` in flight, taking items from `source` only as slots
// free up, and yields each result when it and all before it are done.

export async function* mapOrdered<T, R>(
  source: AsyncIterable<T>,
  fn: (item: T) => Promise<R>,
  parallelism: number,
): AsyncGenerator<R> {
  if (!Number.isInteger(parallelism) || parallelism < 1)
    throw new RangeError(`parallelism must be a positive integer, got ${parallelism}`);
  const items = source[Symbol.asyncIterator]();
  const inFlight: Promise<R>[] = [];
  let exhausted = false;
  try {
    for (;;) {
      while (!exhausted && inFlight.length < parallelism) {
        const next = await items.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        const pending = fn(next.value);
        // a later call may fail while an earlier one is awaited: it is reported in its turn
        pending.catch(() => {});
        inFlight.push(pending);
      }
      const head = inFlight.shift();
      if (!head) return;
      yield await head;
    }
  } finally {
    if (!exhausted) await items.return?.();
  }
}
