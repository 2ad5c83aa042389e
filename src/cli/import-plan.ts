// `hosts import`: which hosts to ask our relay to crawl, what became of each, and the state file
// that lets a rerun carry on where the last one stopped. Pure; import-hosts.ts does the I/O.

/** What our relay answered for one host: added, known before the import, or refused (why). */
export type HostOutcome = "added" | "known" | `refused:${string}`;

/**
 * The state file (`--state`): the source it belongs to, the source's listHosts cursor at the
 * first page not yet finished, and every host finished so far with its outcome.
 */
export type ImportState = {
  source: string;
  cursor: string | null;
  hosts: Record<string, HostOutcome>;
};

export function emptyState(source: string): ImportState {
  return { source, cursor: null, hosts: {} };
}

/** Reads a state file's text; refuses one that is malformed or belongs to another source. */
export function parseState(text: string, source: string): ImportState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error("the state file is not JSON");
  }
  const state = raw as Partial<ImportState> | null;
  if (
    !state ||
    typeof state.source !== "string" ||
    (state.cursor !== null && typeof state.cursor !== "string") ||
    typeof state.hosts !== "object" ||
    state.hosts === null
  )
    throw new Error("the state file is not a `hosts import` state");
  if (state.source !== source)
    throw new Error(
      `the state file is for ${state.source}, not ${source}; use another --state file`,
    );
  return { source: state.source, cursor: state.cursor, hosts: { ...state.hosts } };
}

/**
 * A hostname as requestCrawl takes it, from a line someone may have written as a URL
 * ("https://pds.example.com/"), in any case; null for a blank line.
 */
export function hostnameFromLine(line: string): string | null {
  let name = line.trim();
  if (!name) return null;
  name = name.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  name = name.replace(/\/.*$/, "");
  return name.toLowerCase() || null;
}

/** The hostnames of a list file: one a line, `#` starts a comment, duplicates once. */
export function parseHostList(text: string): string[] {
  const seen = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const name = hostnameFromLine(line.replace(/#.*$/, ""));
    if (name) seen.add(name);
  }
  return [...seen];
}

/** A host as the source lists it; a list file gives no status. */
export type SourceHost = { hostname: string; status?: string };

/**
 * Hosts the source lists with these statuses are not asked for by default: a ban is another
 * operator's judgement worth keeping, and an offline host would only cost a describeServer
 * probe that fails (up to 5 s each). They are counted; `--all` asks for them too.
 */
export const SKIPPED_SOURCE_STATUSES: ReadonlySet<string> = new Set(["banned", "offline"]);

export type PagePlan = {
  /** Not asked for because of their status at the source, by status. */
  skipped: Record<string, string[]>;
  /** Finished in an earlier run (in the state file). */
  done: string[];
  /** Our relay lists it already: nothing to ask (counted as "already known"). */
  known: string[];
  /** To ask our relay to crawl, in the source's order. */
  request: string[];
};

/** Splits one page of the source's hosts by what is left to do for each. */
export function planPage(
  hosts: readonly SourceHost[],
  state: ImportState,
  knownToUs: ReadonlySet<string>,
  skipStatuses: ReadonlySet<string> = SKIPPED_SOURCE_STATUSES,
): PagePlan {
  const plan: PagePlan = { skipped: {}, done: [], known: [], request: [] };
  const seen = new Set<string>();
  for (const host of hosts) {
    const hostname = host.hostname.toLowerCase();
    if (seen.has(hostname)) continue;
    seen.add(hostname);
    if (host.status !== undefined && skipStatuses.has(host.status))
      plan.skipped[host.status] = [...(plan.skipped[host.status] ?? []), hostname];
    else if (state.hosts[hostname] !== undefined) plan.done.push(hostname);
    else if (knownToUs.has(hostname)) plan.known.push(hostname);
    else plan.request.push(hostname);
  }
  return plan;
}

/**
 * Whether a refusal means "stop for now" rather than "this host is refused": a rate limit or the
 * daily cap on new hosts (429) says nothing about the host, and every next request would get it
 * too; the host stays undone so a rerun asks again.
 */
export function stopsTheImport(status: number, error: string): boolean {
  return status === 429 || error === "RateLimitExceeded";
}

export type ImportSummary = {
  added: number;
  known: number;
  refused: number;
  refusedByReason: Record<string, number>;
  /** Not asked for because of their status at the source (SKIPPED_SOURCE_STATUSES). */
  skippedByStatus: Record<string, number>;
  /** Skipped because the state file says an earlier run finished them. */
  doneEarlier: number;
  /** Why the import stopped before the end (a rate limit, the daily cap), if it did. */
  stopped: string | null;
};

export function emptySummary(): ImportSummary {
  return {
    added: 0,
    known: 0,
    refused: 0,
    refusedByReason: {},
    skippedByStatus: {},
    doneEarlier: 0,
    stopped: null,
  };
}

export function countOutcome(summary: ImportSummary, outcome: HostOutcome): void {
  if (outcome === "added") summary.added++;
  else if (outcome === "known") summary.known++;
  else {
    const reason = outcome.slice("refused:".length);
    summary.refused++;
    summary.refusedByReason[reason] = (summary.refusedByReason[reason] ?? 0) + 1;
  }
}

export function formatSummary(s: ImportSummary): string {
  const reasons = Object.entries(s.refusedByReason)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `  ${reason}: ${n}`);
  return [
    `added:          ${s.added}`,
    `already known:  ${s.known}`,
    `refused:        ${s.refused}`,
    ...reasons,
    ...Object.entries(s.skippedByStatus).map(
      ([status, n]) => `not asked:      ${n} (${status} at the source; --all asks for them)`,
    ),
    ...(s.doneEarlier
      ? [`done earlier:   ${s.doneEarlier} (in the state file, not asked again)`]
      : []),
  ].join("\n");
}

/** Waits between request starts so that at most `perSecond` start in any second. */
export function startSpacingMs(perSecond: number): number {
  return 1000 / perSecond;
}
