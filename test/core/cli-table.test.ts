import { describe, expect, it } from "vitest";
import { type AdminHost, hostsTable, statusCounts } from "../../src/cli/hosts";
import { formatCount, formatDuration, formatTable } from "../../src/cli/table";

const host = (over: Partial<AdminHost>): AdminHost => ({
  hostname: "pds.example.com",
  status: "active",
  accountCount: 0,
  lastError: null,
  lagMs: null,
  ...over,
});

describe("CLI tables", () => {
  it("aligns columns, numbers to the right, with no trailing spaces", () => {
    const table = formatTable(
      [
        { name: "a", n: 5 },
        { name: "longer", n: 12345 },
      ],
      [
        { header: "NAME", value: (r) => r.name },
        { header: "N", value: (r) => String(r.n), align: "right" },
      ],
    );
    expect(table).toBe(["NAME        N", "a           5", "longer  12345"].join("\n"));
  });

  it("cuts long free text to one line of the column's width", () => {
    const table = formatTable(
      [{ e: "first line\nsecond line that goes on" }],
      [{ header: "E", value: (r) => r.e, maxWidth: 12 }],
    );
    expect(table.split("\n")[1]).toBe("first line …");
  });

  it("shows hosts as an operator reads them", () => {
    const table = hostsTable([
      host({
        hostname: "morel.us-east.host.bsky.network",
        accountCount: 512034,
        counters: { accepted: 1234567, dropped: { rateLimited: 3, invalidSignature: 1 } },
        lagMs: 850,
      }),
      host({
        hostname: "pds.example.com",
        status: "offline",
        pinned: true,
        lastError: "connect ECONNREFUSED",
        lagMs: 7_200_000,
      }),
    ]);
    expect(table).toBe(
      [
        "HOSTNAME                         STATUS            ACCOUNTS     EVENTS  DROPPED    LAG  LAST ERROR",
        "morel.us-east.host.bsky.network  active             512,034  1,234,567        4  850ms",
        "pds.example.com                  offline (pinned)         0          0        0     2h  connect ECONNREFUSED",
      ].join("\n"),
    );
    expect(hostsTable([])).toContain("no hosts yet");
  });

  it("counts hosts by status, most first", () => {
    expect(statusCounts(["idle", "active", "active", "banned"])).toBe("2 active, 1 banned, 1 idle");
  });

  it("formats counts and durations", () => {
    expect(formatCount(1234567)).toBe("1,234,567");
    expect(formatDuration(0)).toBe("0ms");
    expect(formatDuration(42_000)).toBe("42s");
    expect(formatDuration(7 * 60_000)).toBe("7m");
    expect(formatDuration(3 * 3_600_000)).toBe("3h");
    expect(formatDuration(3 * 86_400_000)).toBe("3d");
  });
});
