// Plain-text tables and the units an operator reads at a glance. Pure.

export type Column<T> = {
  header: string;
  value: (row: T) => string;
  /** Numbers read best right-aligned. */
  align?: "left" | "right";
  /** Longer cells are cut with "…" (for free text like a last error). */
  maxWidth?: number;
};

function cut(text: string, maxWidth: number | undefined): string {
  const oneLine = text.replace(/\s+/g, " ");
  if (maxWidth === undefined || oneLine.length <= maxWidth) return oneLine;
  return `${oneLine.slice(0, Math.max(0, maxWidth - 1))}…`;
}

/** Columns separated by two spaces, a header row, no trailing spaces. */
export function formatTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((row) => columns.map((c) => cut(c.value(row), c.maxWidth)));
  const widths = columns.map((c, i) =>
    Math.max(c.header.length, ...cells.map((r) => (r[i] as string).length)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => {
        const width = widths[i] as number;
        return columns[i]?.align === "right" ? v.padStart(width) : v.padEnd(width);
      })
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join("\n");
}

/** 1234567 → "1,234,567". */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** A duration in the largest unit that keeps it readable: "850ms", "42s", "7m", "3h", "2d". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = ms / 1000;
  if (s < 120) return `${Math.round(s)}s`;
  const m = s / 60;
  if (m < 120) return `${Math.round(m)}m`;
  const h = m / 60;
  if (h < 48) return `${Math.round(h)}h`;
  return `${Math.round(h / 24)}d`;
}
