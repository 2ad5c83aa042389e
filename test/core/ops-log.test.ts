import { describe, expect, it } from "vitest";
import { DROP_LOG_INTERVAL_MS, DropLog, opsLog } from "../../src/ops-log";

function collector() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  return {
    lines,
    raw,
    write: (line: string) => {
      raw.push(line);
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
}

describe("opsLog", () => {
  it("writes one JSON line, the event name first, so a tail search finds it", () => {
    const out = collector();
    opsLog(
      "host_status",
      { hostname: "pds.example.com", from: "active", to: "offline", reason: "x", ingester: "s:1" },
      out.write,
    );
    expect(out.raw).toHaveLength(1);
    expect(out.raw[0]).not.toContain("\n");
    expect(out.raw[0]?.startsWith('{"event":"host_status",')).toBe(true);
    expect(out.lines[0]).toEqual({
      event: "host_status",
      hostname: "pds.example.com",
      from: "active",
      to: "offline",
      reason: "x",
      ingester: "s:1",
    });
  });

  it("keeps a null region on consumer lines (filled once fan-out is regional)", () => {
    const out = collector();
    opsLog(
      "consumer_connect",
      { fanout: "f-0", cursor: 5, start: "replay", region: null },
      out.write,
    );
    expect(out.lines[0]).toHaveProperty("region", null);
  });
});

describe("DropLog", () => {
  function dropLog() {
    let now = 1_000_000;
    const out = collector();
    const log = new DropLog(() => now, out.write);
    return {
      log,
      out,
      advance: (ms: number) => {
        now += ms;
      },
    };
  }

  it("logs the first drop of a host and reason at once, with its detail", () => {
    const { log, out } = dropLog();
    log.note("a.example.com", "BadSignature", { did: "did:plc:x", detail: "sig", ingester: "s" });
    expect(out.lines).toEqual([
      {
        event: "event_dropped",
        hostname: "a.example.com",
        reason: "BadSignature",
        count: 1,
        did: "did:plc:x",
        detail: "sig",
        ingester: "s",
      },
    ]);
  });

  it("writes at most one line per host and reason per interval, and counts the rest", () => {
    const { log, out, advance } = dropLog();
    for (let i = 0; i < 10_000; i++) {
      log.note("flood.example.com", "BadSignature");
      advance(1);
    }
    // 10,000 drops over 10 s: one line now and none more within the interval
    expect(out.lines).toHaveLength(1);
    advance(DROP_LOG_INTERVAL_MS);
    log.note("flood.example.com", "BadSignature");
    expect(out.lines).toHaveLength(2);
    // the second line counts every drop since the first, itself included
    expect(out.lines[1]).toMatchObject({ reason: "BadSignature", count: 10_000 });
  });

  it("keeps hosts and reasons apart", () => {
    const { log, out } = dropLog();
    log.note("a.example.com", "BadSignature");
    log.note("a.example.com", "AccountLimit");
    log.note("b.example.com", "BadSignature");
    log.note("a.example.com", "BadSignature");
    expect(out.lines.map((l) => [l.hostname, l.reason])).toEqual([
      ["a.example.com", "BadSignature"],
      ["a.example.com", "AccountLimit"],
      ["b.example.com", "BadSignature"],
    ]);
  });

  it("flush logs counted drops once their interval is over, and nothing twice", () => {
    const { log, out, advance } = dropLog();
    log.note("a.example.com", "TooBig");
    log.note("a.example.com", "TooBig");
    log.note("a.example.com", "TooBig");
    log.flush("s");
    expect(out.lines).toHaveLength(1); // the interval is not over yet
    advance(DROP_LOG_INTERVAL_MS);
    log.flush("s");
    expect(out.lines).toHaveLength(2);
    expect(out.lines[1]).toEqual({
      event: "event_dropped",
      hostname: "a.example.com",
      reason: "TooBig",
      count: 2,
      ingester: "s",
    });
    advance(DROP_LOG_INTERVAL_MS);
    log.flush("s");
    log.flush("s");
    expect(out.lines).toHaveLength(2);
    // the pair was forgotten once quiet: its next drop is logged at once
    log.note("a.example.com", "TooBig");
    expect(out.lines).toHaveLength(3);
    expect(out.lines[2]).toMatchObject({ count: 1 });
  });
});
