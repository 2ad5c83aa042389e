import type { Config } from "../config";
import type { Env } from "../env";
import { hostDirectoryStub, sequencerStub } from "../stubs";
import { SERVER_HEADER } from "./errors";
import { fanoutConsumers } from "./fanout-consumers";

// GET /metrics in the Prometheus text format (version 0.0.4). Cheap on purpose: three RPCs, each
// answered from one object's SQLite or memory (the log's head, the Fanouts it feeds, and host
// totals summed inside the HostDirectory), plus one per Fanout for its consumers (1 by default;
// fanout-consumers.ts), so a scraper every few seconds costs next to nothing.

/** Prometheus label values escape backslash, double quote and newline. */
function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export async function handleMetrics(env: Env, config: Config): Promise<Response> {
  const sequencer = sequencerStub(env);
  const [log, hosts, consumers] = await Promise.all([
    sequencer.getLogState(),
    hostDirectoryStub(env).totals(),
    sequencer.listFanouts().then((fed) => fanoutConsumers(env, config, fed)),
  ]);
  const lines: string[] = [
    "# HELP freehose_head_seq Last seq assigned by the relay.",
    "# TYPE freehose_head_seq gauge",
    `freehose_head_seq ${log.headSeq}`,
    "# HELP freehose_oldest_seq Oldest seq still served for replay.",
    "# TYPE freehose_oldest_seq gauge",
    `freehose_oldest_seq ${log.oldestSeq ?? 0}`,
    "# HELP freehose_log_writable 1 when the event log accepts events.",
    "# TYPE freehose_log_writable gauge",
    `freehose_log_writable ${log.writable ? 1 : 0}`,
    "# HELP freehose_hosts Known upstream hosts by status.",
    "# TYPE freehose_hosts gauge",
  ];
  for (const [status, n] of Object.entries(hosts.hostsByStatus))
    lines.push(`freehose_hosts{status="${label(status)}"} ${n}`);
  lines.push(
    "# HELP freehose_events_accepted_total Upstream events accepted, summed over hosts.",
    "# TYPE freehose_events_accepted_total counter",
    `freehose_events_accepted_total ${hosts.accepted}`,
    "# HELP freehose_events_dropped_total Upstream events dropped, by reason.",
    "# TYPE freehose_events_dropped_total counter",
  );
  for (const [reason, n] of Object.entries(hosts.droppedByReason))
    lines.push(`freehose_events_dropped_total{reason="${label(reason)}"} ${n}`);
  lines.push(
    "# HELP freehose_consumers subscribeRepos consumers connected, by Fanout (a Fanout that did not answer is left out).",
    "# TYPE freehose_consumers gauge",
  );
  for (const group of consumers)
    if (group.consumers !== null)
      lines.push(`freehose_consumers{fanout="${label(group.key)}"} ${group.consumers}`);
  return new Response(`${lines.join("\n")}\n`, {
    headers: { "Content-Type": "text/plain; version=0.0.4", Server: SERVER_HEADER },
  });
}
