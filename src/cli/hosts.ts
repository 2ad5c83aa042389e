import { pages, type RelayClient } from "./relay-client";
import { formatCount, formatDuration, formatTable } from "./table";

// `hosts list` and the admin actions on one host: what GET /admin/hosts answers and how it reads
// as a table (src/xrpc/admin.ts has the endpoints).

/** The fields of an /admin/hosts entry the CLI shows; the relay sends more, --json keeps them. */
export type AdminHost = {
  hostname: string;
  status: string;
  accountCount: number;
  lastError: string | null;
  lagMs: number | null;
  pinned?: boolean;
  banned?: boolean;
  limits?: { eventsPerSecond: number; maxAccounts: number } | null;
  counters?: { accepted?: number; dropped?: Record<string, number> };
};

/** Largest page /admin/hosts gives (MAX_LIST_LIMIT in src/xrpc/admin.ts). */
const ADMIN_PAGE_LIMIT = 1000;

export async function listAdminHosts(client: RelayClient): Promise<AdminHost[]> {
  const all: AdminHost[] = [];
  const listing = pages(async (cursor) => {
    const page = await client.get<{ hosts: AdminHost[]; cursor?: string }>("/admin/hosts", {
      limit: ADMIN_PAGE_LIMIT,
      cursor,
    });
    return { items: page.hosts, cursor: page.cursor };
  });
  for await (const page of listing) all.push(...page.items);
  return all;
}

function droppedTotal(host: AdminHost): number {
  return Object.values(host.counters?.dropped ?? {}).reduce((a, b) => a + b, 0);
}

export function hostsTable(hosts: readonly AdminHost[]): string {
  if (hosts.length === 0) return "no hosts yet (add one with requestCrawl or `hosts import`)";
  return formatTable(hosts, [
    { header: "HOSTNAME", value: (h) => h.hostname },
    { header: "STATUS", value: (h) => h.status + (h.pinned ? " (pinned)" : "") },
    { header: "ACCOUNTS", value: (h) => formatCount(h.accountCount), align: "right" },
    { header: "EVENTS", value: (h) => formatCount(h.counters?.accepted ?? 0), align: "right" },
    { header: "DROPPED", value: (h) => formatCount(droppedTotal(h)), align: "right" },
    {
      header: "LAG",
      value: (h) => (h.lagMs === null ? "-" : formatDuration(h.lagMs)),
      align: "right",
    },
    { header: "LAST ERROR", value: (h) => h.lastError ?? "", maxWidth: 60 },
  ]);
}

/** One line under the table: how many hosts in each status. */
export function statusCounts(statuses: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([s, n]) => `${n} ${s}`)
    .join(", ");
}
