import type { Env } from "../env";
import { checkHostname } from "../ingest/hostname";
import { renderHostPage, renderStatusPage } from "../status/render";
import type { ConsumerGroup, StatusPageData } from "../status/summary";
import { fanoutStub, hostDirectoryStub, sequencerStub } from "../stubs";
import { SERVER_HEADER, XrpcError } from "./errors";
import type { XrpcHandler } from "./params";

// GET / and GET /hosts/<hostname>: the public status pages (status/render.ts draws them).
// A view of `/` costs 2 + F Durable Object requests: the Sequencer (log and the Fanouts that have
// consumers), the HostDirectory (hosts, their counters and history), and each of those F Fanouts
// (its consumer counts). A host page costs one, the HostDirectory. Clients that do not ask for
// HTML (curl, monitoring) get the old one line, which costs none.

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

async function consumerGroups(env: Env, fanouts: string[]): Promise<ConsumerGroup[]> {
  return Promise.all(
    [...fanouts].sort().map(async (name): Promise<ConsumerGroup> => {
      try {
        const s = await fanoutStub(env, name).stats();
        return {
          key: name,
          consumers: s.consumers,
          live: s.live,
          replaying: s.replaying,
          queuedReplays: s.queuedReplays,
        };
      } catch (err) {
        return {
          key: name,
          consumers: null,
          live: null,
          replaying: null,
          queuedReplays: null,
          error: failure(err),
        };
      }
    }),
  );
}

const statusPage: XrpcHandler = async (request, env) => {
  if (!wantsHtml(request))
    return new Response(PLAIN_TEXT, {
      headers: { "Content-Type": "text/plain", Server: SERVER_HEADER },
    });
  // each part is drawn even if another object fails to answer: the page is for bad days too
  const [log, hosts] = await Promise.allSettled([
    sequencerStub(env).statusSummary(),
    hostDirectoryStub(env).statusSummary(),
  ]);
  const data: StatusPageData = {
    nowMs: Date.now(),
    log: log.status === "fulfilled" ? log.value.log : null,
    hosts: hosts.status === "fulfilled" ? hosts.value : null,
    consumers: log.status === "fulfilled" ? await consumerGroups(env, log.value.fanouts) : [],
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
  const data = await hostDirectoryStub(env).hostPage(checked.hostname);
  return htmlResponse(renderHostPage(data), data.host || data.crawlAnswer ? 200 : 404);
};

/** The status pages' handler for a path, if it is one of theirs (GET only). */
export function statusPageRoute(pathname: string): XrpcHandler | undefined {
  if (pathname === "/") return statusPage;
  if (pathname.startsWith(HOST_PAGE_PREFIX) && pathname.length > HOST_PAGE_PREFIX.length)
    return hostPage;
  return undefined;
}
