/** Prints one benchmark figure beside its same-run reference, as docs/benchmarks.md records them. */
export function reportRatio(name: string, ours: number, reference: number, unit: string): void {
  const ratio = reference > 0 ? ours / reference : Number.NaN;
  console.log(
    `${name}: ours ${formatNumber(ours)} ${unit}, reference ${formatNumber(reference)} ${unit}, ratio ${ratio.toFixed(2)}`,
  );
}

/** A figure with no reference implementation to run beside it (e.g. a target from an issue). */
export function reportFigure(name: string, value: number, unit: string, note = ""): void {
  console.log(`${name}: ${formatNumber(value)} ${unit}${note ? ` (${note})` : ""}`);
}

function formatNumber(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(2);
}
