import { json, XrpcError } from "./errors";
import { didParam, requireMethod, type XrpcHandler } from "./params";
import { findActiveRepo } from "./repo-lookup";

// com.atproto.sync.getLatestCommit: the head commit CID and rev the relay last accepted. A repo
// that is not active answers with the lexicon's error for its status (repo-lookup.ts); no commit
// seen yet is RepoNotFound.

export const handleGetLatestCommit: XrpcHandler = async (request, env, config) => {
  requireMethod(request, "GET");
  const entry = await findActiveRepo(env, config, didParam(new URL(request.url)));
  if (!entry.head || !entry.rev)
    throw new XrpcError(404, "RepoNotFound", `no commit of ${entry.did} has been seen yet`);
  return json({ cid: entry.head, rev: entry.rev });
};
