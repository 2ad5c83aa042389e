import { describe, expect, it } from "vitest";
import {
  countOutcome,
  emptyState,
  emptySummary,
  formatSummary,
  hostnameFromLine,
  parseHostList,
  parseState,
  planPage,
  startSpacingMs,
  stopsTheImport,
} from "../../src/cli/import-plan";

describe("hosts import planning", () => {
  it("reads a host list: one a line, # comments, URLs to hostnames, duplicates once", () => {
    const text = [
      "# Bluesky's PDS hosts",
      "morel.us-east.host.bsky.network",
      "  https://PDS.Example.com/xrpc/  # a URL works too",
      "",
      "localhost:2583",
      "pds.example.com",
    ].join("\r\n");
    expect(parseHostList(text)).toEqual([
      "morel.us-east.host.bsky.network",
      "pds.example.com",
      "localhost:2583",
    ]);
    expect(hostnameFromLine("   ")).toBeNull();
  });

  it("asks only for hosts neither finished earlier nor known to our relay", () => {
    const state = emptyState("https://relay.example");
    state.hosts["done.example"] = "added";
    state.hosts["refused.example"] = "refused:HostNotReachable";
    const plan = planPage(
      [
        { hostname: "done.example", status: "active" },
        { hostname: "Known.example" },
        { hostname: "new.example", status: "idle" },
        { hostname: "refused.example" },
        { hostname: "new.example" },
        { hostname: "gone.example", status: "offline" },
        { hostname: "spam.example", status: "banned" },
        { hostname: "slow.example", status: "throttled" },
      ],
      state,
      new Set(["known.example"]),
    );
    expect(plan).toEqual({
      skipped: { offline: ["gone.example"], banned: ["spam.example"] },
      done: ["done.example", "refused.example"],
      known: ["known.example"],
      request: ["new.example", "slow.example"],
    });
    // --all: nothing is skipped for its status at the source
    const all = planPage(
      [{ hostname: "gone.example", status: "offline" }],
      state,
      new Set(),
      new Set(),
    );
    expect(all.request).toEqual(["gone.example"]);
  });

  it("round-trips the state file and refuses one of another source", () => {
    const state = emptyState("https://relay.example");
    state.cursor = "200";
    state.hosts["a.example"] = "known";
    expect(parseState(JSON.stringify(state), "https://relay.example")).toEqual(state);
    expect(() => parseState(JSON.stringify(state), "file:hosts.txt")).toThrow(
      "the state file is for https://relay.example, not file:hosts.txt",
    );
    expect(() => parseState("{", "x")).toThrow("not JSON");
    expect(() => parseState('{"source":"x"}', "x")).toThrow("not a `hosts import` state");
  });

  it("stops on a rate limit or the daily cap, not on a refused host", () => {
    expect(stopsTheImport(429, "RateLimitExceeded")).toBe(true);
    expect(stopsTheImport(400, "HostNotReachable")).toBe(false);
    expect(stopsTheImport(400, "HostBanned")).toBe(false);
  });

  it("sums outcomes with refusals by reason", () => {
    const summary = emptySummary();
    for (const outcome of [
      "added",
      "added",
      "known",
      "refused:HostNotReachable",
      "refused:HostNotReachable",
      "refused:HostBanned",
    ] as const)
      countOutcome(summary, outcome);
    summary.doneEarlier = 4;
    summary.skippedByStatus = { offline: 2 };
    expect(summary).toMatchObject({
      added: 2,
      known: 1,
      refused: 3,
      refusedByReason: { HostNotReachable: 2, HostBanned: 1 },
    });
    expect(formatSummary(summary)).toBe(
      [
        "added:          2",
        "already known:  1",
        "refused:        3",
        "  HostNotReachable: 2",
        "  HostBanned: 1",
        "not asked:      2 (offline at the source; --all asks for them)",
        "done earlier:   4 (in the state file, not asked again)",
      ].join("\n"),
    );
    expect(startSpacingMs(5)).toBe(200);
  });
});
