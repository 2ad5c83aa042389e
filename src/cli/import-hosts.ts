import { readFileSync, renameSync, writeFileSync } from "node:fs";
import {
  countOutcome,
  emptyState,
  emptySummary,
  type HostOutcome,
  type ImportState,
  type ImportSummary,
  parseState,
  planPage,
  SKIPPED_SOURCE_STATUSES,
  type SourceHost,
  startSpacingMs,
  stopsTheImport,
} from "./import-plan";
import { CliError, pages, type RelayClient, XrpcCallError } from "./relay-client";

// `hosts import`: reads hosts from another relay's com.atproto.sync.listHosts (paged) or from a
// list, and asks our relay to crawl each one it does not know yet, at a bounded rate, saving
// progress after every host so an interrupted import resumes where it stopped.

export type ImportSource =
  | { kind: "relay"; client: RelayClient }
  | { kind: "file"; path: string; hostnames: string[] };

export type ImportOptions = {
  /** Our relay; requestCrawl goes out with its admin token (exempt from the public limits). */
  relay: RelayClient;
  source: ImportSource;
  statePath: string | undefined;
  requestsPerSecond: number;
  /** requestCrawl waits on the host's describeServer (up to 5 s), so several run at once. */
  concurrency: number;
  /** Ask for hosts the source lists as banned or offline too. */
  includeAllStatuses?: boolean;
  /** Called once per host finished in this run, with the running summary. */
  onHost?: (hostname: string, outcome: HostOutcome, summary: ImportSummary) => void;
  /** Called when a page of the source has been read (for progress). */
  onPage?: (hostsInPage: number) => void;
};

const LIST_PAGE_LIMIT = 1000;

function sourceName(source: ImportSource): string {
  return source.kind === "relay" ? source.client.url : `file:${source.path}`;
}

function loadState(path: string | undefined, source: string): ImportState {
  if (!path) return emptyState(source);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return emptyState(source);
    throw new CliError(`cannot read the state file ${path}: ${String(err)}`);
  }
  try {
    return parseState(text, source);
  } catch (err) {
    throw new CliError(`${path}: ${(err as Error).message}`);
  }
}

function saveState(path: string | undefined, state: ImportState): void {
  if (!path) return;
  // write then rename: a kill mid-write leaves the previous state, never half a file
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 1)}\n`);
  renameSync(temporary, path);
}

/** Every hostname a relay lists (public listHosts). */
export async function listedHostnames(client: RelayClient): Promise<Set<string>> {
  const names = new Set<string>();
  for await (const page of sourcePages(client, undefined))
    for (const host of page.items) names.add(host.hostname);
  return names;
}

function sourcePages(client: RelayClient, startCursor: string | undefined) {
  return pages(async (cursor) => {
    const page = await client.get<{ hosts: SourceHost[]; cursor?: string }>(
      "/xrpc/com.atproto.sync.listHosts",
      { limit: LIST_PAGE_LIMIT, cursor },
    );
    return {
      items: page.hosts.map((h) => ({ hostname: h.hostname, status: h.status })),
      cursor: page.cursor,
    };
  }, startCursor);
}

async function requestCrawl(relay: RelayClient, hostname: string): Promise<HostOutcome> {
  try {
    await relay.post("/xrpc/com.atproto.sync.requestCrawl", { hostname });
    return "added";
  } catch (err) {
    if (err instanceof XrpcCallError && !stopsTheImport(err.status, err.error))
      return `refused:${err.error}`;
    throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function importHosts(options: ImportOptions): Promise<ImportSummary> {
  const source = sourceName(options.source);
  const state = loadState(options.statePath, source);
  const summary = emptySummary();
  const knownToUs = await listedHostnames(options.relay);
  const spacingMs = startSpacingMs(options.requestsPerSecond);
  let nextStartMs = 0;
  const skipStatuses = options.includeAllStatuses ? new Set<string>() : SKIPPED_SOURCE_STATUSES;

  const finish = (hostname: string, outcome: HostOutcome) => {
    state.hosts[hostname] = outcome;
    countOutcome(summary, outcome);
    saveState(options.statePath, state);
    options.onHost?.(hostname, outcome, summary);
  };

  /** Requests a page's hosts, at most `concurrency` at once and `requestsPerSecond` started. */
  const requestAll = async (hostnames: readonly string[]) => {
    const inFlight = new Set<Promise<void>>();
    let failure: unknown = null;
    for (const hostname of hostnames) {
      if (failure) break;
      while (inFlight.size >= options.concurrency) await Promise.race(inFlight);
      if (failure) break;
      const wait = nextStartMs - Date.now();
      if (wait > 0) await sleep(wait);
      nextStartMs = Date.now() + spacingMs;
      const task: Promise<void> = requestCrawl(options.relay, hostname).then(
        (outcome) => finish(hostname, outcome),
        (err: unknown) => {
          failure ??= err;
        },
      );
      const tracked = task.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    }
    await Promise.all(inFlight);
    if (failure) throw failure;
  };

  const handlePage = async (hosts: readonly SourceHost[]) => {
    options.onPage?.(hosts.length);
    const plan = planPage(hosts, state, knownToUs, skipStatuses);
    for (const [status, names] of Object.entries(plan.skipped))
      summary.skippedByStatus[status] = (summary.skippedByStatus[status] ?? 0) + names.length;
    summary.doneEarlier += plan.done.length;
    for (const hostname of plan.known) finish(hostname, "known");
    await requestAll(plan.request);
  };

  try {
    if (options.source.kind === "file")
      await handlePage(options.source.hostnames.map((hostname) => ({ hostname })));
    else {
      for await (const page of sourcePages(options.source.client, state.cursor ?? undefined)) {
        await handlePage(page.items);
        // the next run starts at the first page not finished; the last page is read again then,
        // since hosts added to the source later appear at its end
        if (page.next) {
          state.cursor = page.next;
          saveState(options.statePath, state);
        }
      }
    }
  } catch (err) {
    if (err instanceof XrpcCallError && stopsTheImport(err.status, err.error)) {
      summary.stopped = err.message;
      saveState(options.statePath, state);
      return summary;
    }
    throw err;
  }
  saveState(options.statePath, state);
  return summary;
}
