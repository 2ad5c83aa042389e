import type { Env } from "../env";
import { hostDirectoryStub, sequencerStub } from "../stubs";
import { SERVER_HEADER } from "./errors";

// /metrics in the Prometheus text format: the log's head and size, hosts by status, and event
// counters summed over hosts (accepted, dropped by reason). Cheap: two RPCs.

export async function handleMetrics(env: Env): Promise<Response> {
  const [log, hosts] = await Promise.all([
    sequencerStub(env).getLogState(),
    hostDirectoryStub(env).listHosts(null, 10_000),
  ]);
  const lines: string[] = [
    "# TYPE freehose_head_seq gauge",
    `freehose_head_seq ${log.headSeq}`,
    "# TYPE freehose_segments gauge",
    `freehose_segments ${log.segments}`,
    "# TYPE freehose_hot_log_bytes gauge",
    `freehose_hot_log_bytes ${log.hotBytes}`,
  ];
  const byStatus = new Map<string, number>();
  let accepted = 0;
  const dropped = new Map<string, number>();
  for (const h of hosts) {
    byStatus.set(h.status, (byStatus.get(h.status) ?? 0) + 1);
    accepted += h.counters.accepted;
    for (const [reason, n] of Object.entries(h.counters.dropped))
      dropped.set(reason, (dropped.get(reason) ?? 0) + n);
  }
  lines.push("# TYPE freehose_hosts gauge");
  for (const [status, n] of byStatus) lines.push(`freehose_hosts{status="${status}"} ${n}`);
  lines.push(
    "# TYPE freehose_events_accepted_total counter",
    `freehose_events_accepted_total ${accepted}`,
  );
  lines.push("# TYPE freehose_events_dropped_total counter");
  for (const [reason, n] of dropped)
    lines.push(`freehose_events_dropped_total{reason="${reason}"} ${n}`);
  return new Response(`${lines.join("\n")}\n`, {
    headers: { "Content-Type": "text/plain; version=0.0.4", Server: SERVER_HEADER },
  });
}
