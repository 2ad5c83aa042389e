import { readConfig } from "../config";
import type { Env } from "../env";
import { repoIndexShard } from "../ingest/partition";
import type { RepoEntry } from "../ingest/repo-index";
import { isValidDid } from "../protocol/syntax";
import { repoIndexStub } from "../stubs";
import { json, XrpcError } from "./errors";
import { intParam, requiredParam, requireMethod } from "./params";

// listRepos, getRepoStatus and getLatestCommit read the RepoIndex shards. The index is fed by
// the ingesters' coalesced updates (every few seconds), so it may trail the stream slightly.

function didParam(url: URL): string {
  const did = requiredParam(url, "did");
  if (!isValidDid(did)) throw new XrpcError(400, "InvalidRequest", "did is not a valid DID");
  return did;
}

async function findRepo(env: Env, did: string): Promise<RepoEntry> {
  const shard = repoIndexShard(did, readConfig(env).repoIndexShards);
  const entry = await repoIndexStub(env, shard).getRepo(did);
  if (!entry) throw new XrpcError(404, "RepoNotFound", `${did} is not known to this relay`);
  return entry;
}

export async function handleGetRepoStatus(request: Request, env: Env): Promise<Response> {
  requireMethod(request, "GET");
  const entry = await findRepo(env, didParam(new URL(request.url)));
  const body: { did: string; active: boolean; status?: string; rev?: string } = {
    did: entry.did,
    active: entry.active,
  };
  if (!entry.active && entry.status) body.status = entry.status;
  if (entry.active && entry.rev) body.rev = entry.rev;
  return json(body);
}

const INACTIVE_ERRORS: Record<string, string> = {
  takendown: "RepoTakendown",
  suspended: "RepoSuspended",
  deactivated: "RepoDeactivated",
};

export async function handleGetLatestCommit(request: Request, env: Env): Promise<Response> {
  requireMethod(request, "GET");
  const entry = await findRepo(env, didParam(new URL(request.url)));
  if (!entry.active) {
    const error = INACTIVE_ERRORS[entry.status ?? ""] ?? "RepoNotFound";
    throw new XrpcError(
      error === "RepoNotFound" ? 404 : 400,
      error,
      `${entry.did} is ${entry.status ?? "not active"}`,
    );
  }
  if (!entry.head || !entry.rev)
    throw new XrpcError(404, "RepoNotFound", `no commit of ${entry.did} has been seen yet`);
  return json({ cid: entry.head, rev: entry.rev });
}

/** Pages through every shard in DID order: each shard answers `limit` after the cursor; merge. */
export async function handleListRepos(request: Request, env: Env): Promise<Response> {
  requireMethod(request, "GET");
  const url = new URL(request.url);
  const limit = intParam(url, "limit", 1, 1000, 500);
  const cursor = url.searchParams.get("cursor");
  const shards = readConfig(env).repoIndexShards;
  const pages = await Promise.all(
    Array.from({ length: shards }, (_, shard) =>
      repoIndexStub(env, shard).listRepos(cursor, limit),
    ),
  );
  const merged = pages
    .flat()
    .sort((a, b) => (a.did < b.did ? -1 : a.did > b.did ? 1 : 0))
    .slice(0, limit);
  const repos = merged.map((r) => {
    const view: { did: string; head: string; rev: string; active: boolean; status?: string } = {
      did: r.did,
      head: r.head as string,
      rev: r.rev,
      active: r.active,
    };
    if (!r.active && r.status) view.status = r.status;
    return view;
  });
  const body: { repos: typeof repos; cursor?: string } = { repos };
  if (merged.length === limit) body.cursor = (merged[merged.length - 1] as RepoEntry).did;
  return json(body);
}
