import { type Config, readConfig } from "../config";
import type { Env } from "../env";
import { ADMIN_ROUTES, authorizeAdmin } from "./admin";
import { withPublicCors } from "./cors";
import { SERVER_HEADER, XrpcError, xrpcError } from "./errors";
import { handleGetHostStatus } from "./get-host-status";
import { handleGetLatestCommit } from "./get-latest-commit";
import { handleGetRepoStatus } from "./get-repo-status";
import { handleHealth } from "./health";
import { handleJetstreamSubscribe } from "./jetstream-subscribe";
import { handleListHosts } from "./list-hosts";
import { handleListRepos } from "./list-repos";
import { handleMetrics } from "./metrics";
import type { XrpcHandler } from "./params";
import { handleRequestCrawl } from "./request-crawl";
import { handleResyncRedirect } from "./resync-redirect";
import { handleSegmentDownload, SEGMENT_PATH_PREFIX } from "./segment-download";
import { handleSegmentPlan } from "./segment-plan";
import { statusPageRoute } from "./status-page";
import { handleSubscribeRepos } from "./subscribe-repos";

// Plain functions over Request/Response: a path picks a handler, the handler gets the typed
// configuration, and every answer leaves with the relay's Server header (the loop guard).

const ROUTES: Record<string, XrpcHandler> = {
  "/xrpc/_health": (_request, env) => handleHealth(env),
  "/xrpc/com.atproto.sync.subscribeRepos": handleSubscribeRepos,
  "/xrpc/com.atproto.sync.requestCrawl": handleRequestCrawl,
  "/xrpc/com.atproto.sync.listHosts": handleListHosts,
  "/xrpc/com.atproto.sync.getHostStatus": handleGetHostStatus,
  "/xrpc/com.atproto.sync.listRepos": handleListRepos,
  "/xrpc/com.atproto.sync.getRepoStatus": handleGetRepoStatus,
  "/xrpc/com.atproto.sync.getLatestCommit": handleGetLatestCommit,
  "/metrics": (_request, env, config) => handleMetrics(env, config),
  "/xrpc/com.atproto.sync.getRepo": handleResyncRedirect,
  "/xrpc/com.atproto.sync.getRecord": handleResyncRedirect,
  "/xrpc/com.atproto.sync.getBlocks": handleResyncRedirect,
  "/segments": withPublicCors(handleSegmentPlan),
  "/subscribe": handleJetstreamSubscribe,
};

const segmentDownload = withPublicCors(handleSegmentDownload);

/** Paths that carry a name: the handler for a path that is not in ROUTES. */
function prefixRoute(pathname: string): XrpcHandler | undefined {
  if (pathname.startsWith(SEGMENT_PATH_PREFIX)) return segmentDownload;
  return undefined;
}

for (const [path, handler] of Object.entries(ADMIN_ROUTES)) {
  ROUTES[path] = (request, env, config) => {
    authorizeAdmin(request, config);
    return handler(request, env, config);
  };
}

function withServerHeader(response: Response): Response {
  // a WebSocket upgrade's response cannot be copied; its headers went out with the handshake
  if (response.status === 101 || response.headers.get("Server") === SERVER_HEADER) return response;
  const copy = new Response(response.body, response);
  copy.headers.set("Server", SERVER_HEADER);
  return copy;
}

function notFound(pathname: string): Response {
  // unknown XRPC methods answer as the reference implementations do
  if (pathname.startsWith("/xrpc/"))
    return xrpcError(501, "MethodNotImplemented", `${pathname.slice(6)} is not implemented`);
  return xrpcError(404, "NotFound", `no route for ${pathname}`);
}

/**
 * Routes a request to its handler. `config` defaults to the Worker's own (`readConfig(env)`);
 * tests pass another one to exercise, e.g., the production hostname policy or a disabled admin.
 */
export async function route(
  request: Request,
  env: Env,
  config: Config = readConfig(env),
  ctx?: ExecutionContext,
): Promise<Response> {
  const url = new URL(request.url);
  const handler =
    ROUTES[url.pathname] ?? prefixRoute(url.pathname) ?? statusPageRoute(url.pathname);
  if (!handler) return notFound(url.pathname);
  try {
    return withServerHeader(await handler(request, env, config, ctx));
  } catch (err) {
    if (err instanceof XrpcError) return err.toResponse();
    console.error(
      JSON.stringify({ msg: "handler failed", path: url.pathname, error: String(err) }),
    );
    return xrpcError(500, "InternalServerError", "the relay failed to answer; this is our fault");
  }
}
