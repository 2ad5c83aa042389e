import { describe, expect, it } from "vitest";
import { formatStatus, parsePrometheus, relayStatus } from "../../src/cli/status";

const METRICS = `# HELP freehose_head_seq Last seq assigned by the relay.
# TYPE freehose_head_seq gauge
freehose_head_seq 1042
freehose_hosts{status="active"} 3
freehose_hosts{status="offline"} 1
freehose_events_accepted_total 1040
freehose_events_dropped_total{reason="rate \\"limited\\""} 2
freehose_consumers{region="weur"} 4
freehose_consumers{region="enam"} 1
not a sample
`;

describe("CLI status", () => {
  it("parses Prometheus samples with labels and escapes", () => {
    const samples = parsePrometheus(METRICS);
    expect(samples[0]).toEqual({ name: "freehose_head_seq", labels: {}, value: 1042 });
    expect(samples.find((s) => s.name === "freehose_events_dropped_total")?.labels).toEqual({
      reason: 'rate "limited"',
    });
    expect(samples).toHaveLength(7);
  });

  it("builds the status from health and metrics, consumers summed over regions", () => {
    const status = relayStatus(
      "https://relay.example",
      { seq: 1042, oldestSeq: 1, writable: true, segments: 2 },
      parsePrometheus(METRICS),
    );
    expect(status).toEqual({
      url: "https://relay.example",
      headSeq: 1042,
      oldestSeq: 1,
      writable: true,
      segments: 2,
      hostsByStatus: { active: 3, offline: 1 },
      eventsAccepted: 1040,
      eventsDroppedByReason: { 'rate "limited"': 2 },
      consumers: 5,
    });
    expect(formatStatus(status)).toBe(
      [
        "relay            https://relay.example",
        "log              writable",
        "head seq         1,042",
        "oldest seq       1",
        "segments         2",
        "hosts            4 (3 active, 1 offline)",
        "events accepted  1,040",
        'events dropped   2 rate "limited"',
        "consumers        5",
      ].join("\n"),
    );
  });

  it("says so when the relay does not report consumers", () => {
    const status = relayStatus("https://r", { seq: 0, oldestSeq: null, writable: false }, []);
    expect(formatStatus(status)).toContain("consumers        not reported by this relay");
    expect(formatStatus(status)).toContain("log              NOT WRITABLE");
  });
});
