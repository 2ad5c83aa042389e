import { describe, expect, it } from "vitest";
import { backoffMs, PLC_BACKOFF, PlcSources, parsePlcUrls } from "../../src/identity/plc-sources";

const PRIMARY = "https://plc.directory";
const MIRROR = "https://plc.mirror.example";

function clock(startMs = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = startMs;
  return {
    now: () => t,
    advance(ms) {
      t += ms;
    },
  };
}

describe("PLC sources: order and health", () => {
  it("asks every source in configured order while all are healthy", () => {
    const sources = new PlcSources([PRIMARY, MIRROR], clock().now);
    expect(sources.toAsk()).toEqual([PRIMARY, MIRROR]);
  });

  it("skips a failed source for its backoff, then asks it first again", () => {
    const c = clock();
    const sources = new PlcSources([PRIMARY, MIRROR], c.now);
    expect(sources.failed(PRIMARY)).toEqual({
      kind: "unhealthy",
      url: PRIMARY,
      failures: 1,
      retryInMs: PLC_BACKOFF.baseMs,
    });
    expect(sources.toAsk()).toEqual([MIRROR]);
    c.advance(PLC_BACKOFF.baseMs - 1);
    expect(sources.toAsk()).toEqual([MIRROR]);
    c.advance(1);
    expect(sources.toAsk()).toEqual([PRIMARY, MIRROR]);
    // it answers: healthy again, and a later failure starts from the base backoff
    expect(sources.answered(PRIMARY)).toEqual({ kind: "recovered", url: PRIMARY });
    expect(sources.answered(PRIMARY)).toBeNull();
    expect(sources.failed(PRIMARY)).toMatchObject({ retryInMs: PLC_BACKOFF.baseMs });
  });

  it("doubles the backoff at each consecutive failure, up to the bound", () => {
    const c = clock();
    const sources = new PlcSources([PRIMARY, MIRROR], c.now);
    const waits: number[] = [];
    for (let i = 0; i < 12; i++) {
      const change = sources.failed(PRIMARY);
      waits.push(change?.kind === "unhealthy" ? change.retryInMs : -1);
      c.advance(change?.kind === "unhealthy" ? change.retryInMs : 0);
    }
    expect(waits.slice(0, 4)).toEqual([5_000, 10_000, 20_000, 40_000]);
    expect(Math.max(...waits)).toBe(PLC_BACKOFF.maxMs);
    expect(waits.at(-1)).toBe(PLC_BACKOFF.maxMs);
    expect(backoffMs(1_000)).toBe(PLC_BACKOFF.maxMs);
  });

  it("when every source backs off, asks only the one whose backoff ends first", () => {
    const c = clock();
    const sources = new PlcSources([PRIMARY, MIRROR], c.now);
    sources.failed(PRIMARY);
    sources.failed(PRIMARY); // 10 s
    c.advance(1_000);
    sources.failed(MIRROR); // 5 s from now: ends first
    expect(sources.toAsk()).toEqual([MIRROR]);
    // a single source is never refused: it is asked even while it backs off
    const single = new PlcSources([PRIMARY], c.now);
    single.failed(PRIMARY);
    expect(single.toAsk()).toEqual([PRIMARY]);
  });

  it("reports health without exposing its state to change", () => {
    const c = clock();
    const sources = new PlcSources([PRIMARY, MIRROR], c.now);
    sources.failed(MIRROR);
    const health = sources.health();
    expect(health).toEqual([
      { url: PRIMARY, failures: 0, retryAtMs: 0 },
      { url: MIRROR, failures: 1, retryAtMs: c.now() + PLC_BACKOFF.baseMs },
    ]);
    (health[1] as { failures: number }).failures = 0;
    expect(sources.toAsk()).toEqual([PRIMARY]);
  });

  it("ignores reports about a source it does not hold", () => {
    const sources = new PlcSources([PRIMARY], clock().now);
    expect(sources.failed(MIRROR)).toBeNull();
    expect(sources.toAsk()).toEqual([PRIMARY]);
  });
});

describe("PLC_URL", () => {
  it("defaults to plc.directory", () => {
    expect(parsePlcUrls(undefined)).toEqual([PRIMARY]);
    expect(parsePlcUrls("")).toEqual([PRIMARY]);
  });

  it("takes several directories in order, trimmed, without trailing slashes", () => {
    expect(parsePlcUrls(` ${MIRROR}/ ,${PRIMARY}, http://localhost:2582/plc/`)).toEqual([
      MIRROR,
      PRIMARY,
      "http://localhost:2582/plc",
    ]);
  });

  it.each([
    ["not a url", /not a URL/],
    ["ftp://plc.example", /not http/],
    ["https://user:pw@plc.example", /credentials/],
    ["https://plc.example?x=1", /query/],
    [`${PRIMARY},${PRIMARY}/`, /twice/],
    [" , ", /no PLC directory/],
  ])("refuses %s", (value, message) => {
    expect(() => parsePlcUrls(value)).toThrow(message);
  });
});
