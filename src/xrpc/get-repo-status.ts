import { json } from "./errors";
import { didParam, requireMethod, type XrpcHandler } from "./params";
import { findRepo } from "./repo-lookup";
import { repoStatusView } from "./views";

// com.atproto.sync.getRepoStatus: whether the relay hosts (relays) this account, and why not.
// The index is fed by the ingesters' coalesced updates, so it may trail the stream by a tick.

export const handleGetRepoStatus: XrpcHandler = async (request, env, config) => {
  requireMethod(request, "GET");
  const did = didParam(new URL(request.url));
  return json(repoStatusView(await findRepo(env, config, did)));
};
