import { json, XrpcError } from "./errors";
import { didParam, requireMethod, type XrpcHandler } from "./params";
import { findRepo } from "./repo-lookup";

// com.atproto.sync.getLatestCommit: the head commit CID and rev the relay last accepted. A repo
// that is not active answers with the lexicon's error for its status, as the reference PDS does
// (a 400, like every declared XRPC error); any other inactive status, or no commit seen yet, is
// RepoNotFound.

const INACTIVE_ERRORS: Record<string, string> = {
  takendown: "RepoTakendown",
  suspended: "RepoSuspended",
  deactivated: "RepoDeactivated",
};

export const handleGetLatestCommit: XrpcHandler = async (request, env, config) => {
  requireMethod(request, "GET");
  const entry = await findRepo(env, config, didParam(new URL(request.url)));
  if (!entry.active) {
    const error = INACTIVE_ERRORS[entry.status ?? ""];
    if (error) throw new XrpcError(400, error, `${entry.did} is ${entry.status}`);
    throw new XrpcError(404, "RepoNotFound", `${entry.did} is ${entry.status ?? "not active"}`);
  }
  if (!entry.head || !entry.rev)
    throw new XrpcError(404, "RepoNotFound", `no commit of ${entry.did} has been seen yet`);
  return json({ cid: entry.head, rev: entry.rev });
};
