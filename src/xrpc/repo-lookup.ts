import type { Config } from "../config";
import type { Env } from "../env";
import { repoIndexShard } from "../ingest/partition";
import type { RepoEntry } from "../ingest/repo-index";
import { repoIndexStub } from "../stubs";
import { XrpcError } from "./errors";

/** The RepoIndex shard that holds a DID (one object per lookup, see ingest/repo-index.ts). */
export function repoIndexFor(env: Env, config: Config, did: string) {
  return repoIndexStub(env, repoIndexShard(did, config.repoIndexShards));
}

/** A repo's index entry, or the lexicons' 404 RepoNotFound. */
export async function findRepo(env: Env, config: Config, did: string): Promise<RepoEntry> {
  const entry = await repoIndexFor(env, config, did).getRepo(did);
  if (!entry) throw new XrpcError(404, "RepoNotFound", `${did} is not known to this relay`);
  return entry;
}

/** The lexicons' errors for an inactive account: 400, like every declared XRPC error. */
const INACTIVE_ERRORS: Record<string, string> = {
  takendown: "RepoTakendown",
  suspended: "RepoSuspended",
  deactivated: "RepoDeactivated",
};

/**
 * An active repo's index entry. An inactive one answers with the lexicon's error for its status,
 * as the reference PDS does; any other inactive status is RepoNotFound.
 */
export async function findActiveRepo(env: Env, config: Config, did: string): Promise<RepoEntry> {
  const entry = await findRepo(env, config, did);
  if (!entry.active) {
    const error = INACTIVE_ERRORS[entry.status ?? ""];
    if (error) throw new XrpcError(400, error, `${entry.did} is ${entry.status}`);
    throw new XrpcError(404, "RepoNotFound", `${entry.did} is ${entry.status ?? "not active"}`);
  }
  return entry;
}
