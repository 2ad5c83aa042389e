import { isLoopbackHostname } from "../ingest/hostname";
import { didParam, requireMethod, type XrpcHandler } from "./params";
import { findActiveRepo } from "./repo-lookup";

// com.atproto.sync.getRepo, getRecord and getBlocks: the relay keeps no repositories, so, as the
// reference relay does for getRepo (indigo cmd/relay), it answers with a 302 to the same path
// and query on the account's PDS. A consumer that finds a gap in an account's commit chain can
// resync from where the repository lives. Unlike the reference relay (which resolves the DID
// document and redirects even a taken-down account), the host is the one this relay crawls the
// account from (one RepoIndex lookup), and inactive accounts get the lexicons' errors.

export const handleResyncRedirect: XrpcHandler = async (request, env, config) => {
  requireMethod(request, "GET");
  const url = new URL(request.url);
  const entry = await findActiveRepo(env, config, didParam(url));
  // plain http only to the loopback hosts DEV_MODE lets the relay crawl (ingest/hostname.ts)
  const secure = !(config.devMode && isLoopbackHostname(entry.host));
  const target = new URL(
    `${url.pathname}${url.search}`,
    `${secure ? "https" : "http"}://${entry.host}`,
  );
  return new Response(null, { status: 302, headers: { Location: target.toString() } });
};
