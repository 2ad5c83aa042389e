import type { RelayClient } from "./relay-client";
import { formatCount } from "./table";

// `status`: the relay at a glance, from its public endpoints only (/xrpc/_health and /metrics),
// so it works without the admin token.

export type Health = {
  seq: number;
  oldestSeq: number | null;
  writable: boolean;
  segments?: number;
  hotBytes?: number;
};

export type Sample = { name: string; labels: Record<string, string>; value: number };

/** The samples of a Prometheus text exposition (0.0.4); comments and malformed lines skipped. */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split("\n")) {
    if (raw.startsWith("#")) continue;
    const m = line.exec(raw.trim());
    if (!m) continue;
    const value = Number(m[3]);
    if (Number.isNaN(value)) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(label))
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) =>
        c === "n" ? "\n" : c,
      );
    samples.push({ name: m[1] as string, labels, value });
  }
  return samples;
}

/** Sample values of one metric keyed by one label (e.g. hosts by status). */
export function byLabel(samples: readonly Sample[], name: string, key: string): [string, number][] {
  return samples
    .filter((s) => s.name === name && s.labels[key] !== undefined)
    .map((s) => [s.labels[key] as string, s.value]);
}

export type RelayStatus = {
  url: string;
  headSeq: number;
  oldestSeq: number | null;
  writable: boolean;
  segments: number | null;
  hostsByStatus: Record<string, number>;
  eventsAccepted: number | null;
  eventsDroppedByReason: Record<string, number>;
  /** Consumers connected, when the relay's /metrics reports them (null: it does not). */
  consumers: number | null;
};

/**
 * Builds the status from what the two endpoints answered. Consumers are counted from any
 * `freehose_consumers*` gauge the relay exports (summed over its labels, e.g. regions).
 */
export function relayStatus(url: string, health: Health, metrics: readonly Sample[]): RelayStatus {
  const accepted = metrics.find((s) => s.name === "freehose_events_accepted_total");
  const consumerSamples = metrics.filter((s) => s.name === "freehose_consumers");
  return {
    url,
    headSeq: health.seq,
    oldestSeq: health.oldestSeq,
    writable: health.writable,
    segments: health.segments ?? null,
    hostsByStatus: Object.fromEntries(byLabel(metrics, "freehose_hosts", "status")),
    eventsAccepted: accepted?.value ?? null,
    eventsDroppedByReason: Object.fromEntries(
      byLabel(metrics, "freehose_events_dropped_total", "reason"),
    ),
    consumers: consumerSamples.length ? consumerSamples.reduce((sum, s) => sum + s.value, 0) : null,
  };
}

export async function fetchStatus(client: RelayClient): Promise<RelayStatus> {
  const [health, metrics] = await Promise.all([
    client.get<Health>("/xrpc/_health"),
    client.getText("/metrics"),
  ]);
  return relayStatus(client.url, health, parsePrometheus(metrics));
}

function counts(record: Record<string, number>): string {
  const entries = Object.entries(record).filter(([, n]) => n > 0);
  if (entries.length === 0) return "none";
  return entries
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${formatCount(n)} ${k}`)
    .join(", ");
}

export function formatStatus(s: RelayStatus): string {
  const totalHosts = Object.values(s.hostsByStatus).reduce((a, b) => a + b, 0);
  const rows: [string, string][] = [
    ["relay", s.url],
    ["log", s.writable ? "writable" : "NOT WRITABLE"],
    ["head seq", formatCount(s.headSeq)],
    ["oldest seq", s.oldestSeq === null ? "-" : formatCount(s.oldestSeq)],
    ["segments", s.segments === null ? "-" : formatCount(s.segments)],
    ["hosts", `${formatCount(totalHosts)} (${counts(s.hostsByStatus)})`],
    ["events accepted", s.eventsAccepted === null ? "-" : formatCount(s.eventsAccepted)],
    ["events dropped", counts(s.eventsDroppedByReason)],
    ["consumers", s.consumers === null ? "not reported by this relay" : formatCount(s.consumers)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}
