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
