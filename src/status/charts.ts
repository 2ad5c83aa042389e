import { type Html, html } from "./html";

// Small inline SVG charts, drawn on the server: no script, no library, a few hundred bytes each.

const WIDTH = 600;
const HEIGHT = 90;

export type Bar = { label: string; value: number | null };

function format(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/**
 * Vertical bars in time order (events/s per minute); a null bar (no data for that minute) is a
 * short grey tick, so "nothing known" never looks like "zero". `title` is read by screen
 * readers and shown on hover.
 */
export function barChart(title: string, bars: Bar[], unit: string): Html {
  const max = Math.max(0, ...bars.map((b) => b.value ?? 0));
  const slot = WIDTH / Math.max(1, bars.length);
  // 14 px at the top for the scale, 14 at the bottom for the time axis
  const plotHeight = HEIGHT - 28;
  const rects = bars.map((b, i) => {
    const x = (i * slot + 1).toFixed(1);
    const w = Math.max(1, slot - 2).toFixed(1);
    if (b.value === null)
      return html`<rect class="none" x="${x}" y="${HEIGHT - 16}" width="${w}" height="2"><title>${b.label}: no data</title></rect>`;
    const h = max === 0 ? 0 : (b.value / max) * plotHeight;
    const y = (HEIGHT - 14 - h).toFixed(1);
    return html`<rect x="${x}" y="${y}" width="${w}" height="${Math.max(0.5, h).toFixed(1)}"><title>${b.label}: ${format(b.value)} ${unit}</title></rect>`;
  });
  const first = bars[0]?.label ?? "";
  const last = bars.at(-1)?.label ?? "";
  return html`<figure class="chart"><svg viewBox="0 0 ${WIDTH} ${HEIGHT}" width="100%" height="${HEIGHT}" role="img" aria-label="${title}"><title>${title}</title>${rects}<line x1="0" y1="${HEIGHT - 13}" x2="${WIDTH}" y2="${HEIGHT - 13}" class="axis"/><text x="0" y="${HEIGHT - 2}">${first}</text><text x="${WIDTH}" y="${HEIGHT - 2}" text-anchor="end">${last}</text><text x="${WIDTH}" y="10" text-anchor="end">${bars.every((b) => b.value === null) ? "no data yet" : `max ${format(max)} ${unit}`}</text></svg><figcaption>${title}</figcaption></figure>`;
}

/** Horizontal bars, one per labelled value (e.g. seconds since each host's last event). */
export function rankChart(title: string, rows: Bar[], unit: string): Html {
  const rowHeight = 16;
  const labelWidth = 220;
  const max = Math.max(0, ...rows.map((r) => r.value ?? 0));
  const height = Math.max(rowHeight, rows.length * rowHeight);
  const items = rows.map((r, i) => {
    const y = i * rowHeight;
    const w = r.value === null || max === 0 ? 0 : (r.value / max) * (WIDTH - labelWidth - 60);
    const label = r.label.length > 32 ? `${r.label.slice(0, 31)}…` : r.label;
    return html`<text x="0" y="${y + 12}">${label}</text><rect x="${labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 6}"/><text x="${(labelWidth + w + 4).toFixed(1)}" y="${y + 12}">${r.value === null ? "never" : `${format(r.value)} ${unit}`}</text>`;
  });
  return html`<figure class="chart"><svg viewBox="0 0 ${WIDTH} ${height}" width="100%" height="${height}" role="img" aria-label="${title}"><title>${title}</title>${items}</svg><figcaption>${title}</figcaption></figure>`;
}
