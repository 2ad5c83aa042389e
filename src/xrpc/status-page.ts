import type { Env } from "../env";
import { isSending } from "../ingest/host-views";
import { checkHostname } from "../ingest/hostname";
import { isIngesterObjectName } from "../ingest/partition";
import { type IngesterRates, mergeIngesterRates } from "../status/rate-history";
import { renderHostPage, renderStatusPage } from "../status/render";
import type { RelayRates, StatusPageData } from "../status/summary";
import { hostDirectoryStub, hostIngesterStub, sequencerStub } from "../stubs";
import { SERVER_HEADER, XrpcError } from "./errors";
import { fanoutConsumers } from "./fanout-consumers";
import type { XrpcHandler } from "./params";

// GET / and GET /hosts/<hostname>: the public status pages (status/render.ts draws them).
// A view of `/` costs 2 + F + I Durable Object requests: the Sequencer (the log), the
// HostDirectory (hosts and their counters), each of the F Fanouts (FANOUT_SHARDS, and any other
// the Sequencer feeds: their consumers) and each of the I ingester objects holding an active or throttled host (their
// events/s per minute: they are awake anyway, holding sockets). A host page costs 1, or 2 when
// the host is connected. Clients that do not ask for HTML (curl, monitoring) get the old one
// line, which costs none.

const PLAIN_TEXT = "freehose: an atproto relay. Health: /xrpc/_health\n";

function wantsHtml(request: Request): boolean {
  return (request.headers.get("Accept") ?? "").includes("text/html");
}

function htmlResponse(body: string, status = 200): Response {
  return new Response(body, {
    status,
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      // nothing on these pages runs a script or loads anything from elsewhere
      "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
      Server: SERVER_HEADER,
    },
  });
}

function failure(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The rates of `holders`' hosts (of one host when `hostname` is given), merged. */
async function ingesterRates(
  env: Env,
  holders: string[],
  nowMs: number,
  hostname?: string,
): Promise<RelayRates & { recentByHost: Record<string, number | null> }> {
  const answers = await Promise.allSettled(
    holders.map((name) => hostIngesterStub(env, name).statusRates(hostname)),
  );
  const ok = answers.flatMap((a) => (a.status === "fulfilled" ? [a.value as IngesterRates] : []));
  const failed = answers.flatMap((a) => (a.status === "rejected" ? [failure(a.reason)] : []));
  const merged = mergeIngesterRates(ok, nowMs);
  return failed.length > 0 ? { ...merged, error: failed.join("; ") } : merged;
}

const statusPage: XrpcHandler = async (request, env, config) => {
  if (!wantsHtml(request))
    return new Response(PLAIN_TEXT, {
      headers: { "Content-Type": "text/plain", Server: SERVER_HEADER },
    });
  // each part is drawn even if another object fails to answer: the page is for bad days too
  const [log, hosts] = await Promise.allSettled([
    sequencerStub(env).statusSummary(),
    hostDirectoryStub(env).statusSummary(),
  ]);
  const nowMs = Date.now();
  const directory = hosts.status === "fulfilled" ? hosts.value : null;
  const [consumers, rates] = await Promise.all([
    fanoutConsumers(env, config, log.status === "fulfilled" ? log.value.fanouts : []),
    ingesterRates(env, directory?.holders ?? [], nowMs),
  ]);
  if (directory)
    for (const h of directory.shown) h.eventsPerSecond = rates.recentByHost[h.hostname] ?? null;
  const data: StatusPageData = {
    nowMs,
    log: log.status === "fulfilled" ? log.value.log : null,
    hosts: directory,
    rates,
    consumers,
  };
  if (log.status === "rejected") data.logError = failure(log.reason);
  if (hosts.status === "rejected") data.hostsError = failure(hosts.reason);
  return htmlResponse(renderStatusPage(data));
};

const HOST_PAGE_PREFIX = "/hosts/";

const hostPage: XrpcHandler = async (request, env, config) => {
  let raw: string;
  try {
    raw = decodeURIComponent(new URL(request.url).pathname.slice(HOST_PAGE_PREFIX.length));
  } catch {
    throw new XrpcError(
      404,
      "NotFound",
      "no host page: the hostname is not valid percent-encoding",
    );
  }
  const checked = checkHostname(raw, config.devMode);
  if (!checked.ok) throw new XrpcError(404, "NotFound", `no host page: ${checked.message}`);
  const hostname = checked.hostname;
  const { host, holder, crawlAnswer } = await hostDirectoryStub(env).hostPage(hostname);
  const nowMs = Date.now();
  const sending = host !== null && isSending(host.status) && isIngesterObjectName(holder);
  const rates = await ingesterRates(env, sending ? [holder] : [], nowMs, hostname);
  if (host) host.eventsPerSecond = rates.recentByHost[hostname] ?? null;
  const page = renderHostPage({ nowMs, hostname, host, rates, crawlAnswer });
  return htmlResponse(page, host || crawlAnswer ? 200 : 404);
};

/** The status pages' handler for a path, if it is one of theirs (GET only). */
export function statusPageRoute(pathname: string): XrpcHandler | undefined {
  if (pathname === "/") return statusPage;
  if (pathname.startsWith(HOST_PAGE_PREFIX) && pathname.length > HOST_PAGE_PREFIX.length)
    return hostPage;
  return undefined;
}
