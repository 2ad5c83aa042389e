import type { Env } from "../env";
import { ADMIN_ROUTES, authorizeAdmin } from "./admin";
import { SERVER_HEADER, XrpcError, xrpcError } from "./errors";
import { handleHealth } from "./health";
import { handleGetHostStatus, handleListHosts } from "./hosts";
import { handleMetrics } from "./metrics";
import { handleGetLatestCommit, handleGetRepoStatus, handleListRepos } from "./repos";
import { handleRequestCrawl } from "./request-crawl";
import { handleSubscribeRepos } from "./subscribe-repos";

type Handler = (request: Request, env: Env) => Promise<Response>;

const ROUTES: Record<string, Handler> = {
  "/xrpc/_health": (_request, env) => handleHealth(env),
  "/xrpc/com.atproto.sync.subscribeRepos": handleSubscribeRepos,
  "/xrpc/com.atproto.sync.requestCrawl": handleRequestCrawl,
  "/xrpc/com.atproto.sync.listHosts": handleListHosts,
  "/xrpc/com.atproto.sync.getHostStatus": handleGetHostStatus,
  "/xrpc/com.atproto.sync.listRepos": handleListRepos,
  "/xrpc/com.atproto.sync.getRepoStatus": handleGetRepoStatus,
  "/xrpc/com.atproto.sync.getLatestCommit": handleGetLatestCommit,
  "/metrics": (_request, env) => handleMetrics(env),
};

for (const [path, handler] of Object.entries(ADMIN_ROUTES)) {
  ROUTES[path] = async (request, env) => {
    authorizeAdmin(request, env);
    return handler(request, env);
  };
}

/** Routes a request to its handler; every answer carries the relay's Server header (loop guard). */
export async function route(request: Request, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const handler = ROUTES[url.pathname];
  if (!handler) {
    if (url.pathname.startsWith("/xrpc/"))
      return xrpcError(501, "MethodNotImplemented", `${url.pathname.slice(6)} is not implemented`);
    if (url.pathname === "/")
      return new Response("freehose: an atproto relay. See /xrpc/_health\n", {
        headers: { Server: SERVER_HEADER },
      });
    return xrpcError(404, "NotFound", `no route for ${url.pathname}`);
  }
  try {
    const response = await handler(request, env);
    if (response.status === 101) return response;
    if (!response.headers.has("Server")) {
      const copy = new Response(response.body, response);
      copy.headers.set("Server", SERVER_HEADER);
      return copy;
    }
    return response;
  } catch (err) {
    if (err instanceof XrpcError) return err.toResponse();
    console.error(
      JSON.stringify({ msg: "handler failed", path: url.pathname, error: String(err) }),
    );
    return xrpcError(500, "InternalServerError", "the relay failed to answer; this is our fault");
  }
}
