import type { RepoEntry } from "../ingest/repo-index";
import { repoIndexStub } from "../stubs";
import { json, XrpcError } from "./errors";
import { intParam, requireMethod, type XrpcHandler } from "./params";
import { type RepoView, repoView } from "./views";

// com.atproto.sync.listRepos: every repo with a commit, ordered by DID, across all RepoIndex
// shards. Each shard answers at most `limit` DIDs after the cursor (DIDs are spread by hash, so
// any shard may hold the next ones); the merge keeps the `limit` smallest. The cursor is the
// last DID served, which every shard understands.

const DEFAULT_LIMIT = 500;
const MAX_LIMIT = 1000;
/** A DID is at most 2 KB (atproto DID syntax); a longer cursor is not one we issued. */
const MAX_CURSOR_CHARS = 2048;

function byDid(a: RepoEntry, b: RepoEntry): number {
  return a.did < b.did ? -1 : a.did > b.did ? 1 : 0;
}

function hasCommit(entry: RepoEntry): entry is RepoEntry & { head: string } {
  return entry.head !== null && entry.rev !== "";
}

export const handleListRepos: XrpcHandler = async (request, env, config) => {
  requireMethod(request, "GET");
  const url = new URL(request.url);
  const limit = intParam(url, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT);
  const cursor = url.searchParams.get("cursor") || null;
  if (cursor !== null && (cursor.length > MAX_CURSOR_CHARS || !cursor.startsWith("did:")))
    throw new XrpcError(400, "InvalidRequest", "cursor is not valid");
  const pages = await Promise.all(
    Array.from({ length: config.repoIndexShards }, (_, shard) =>
      repoIndexStub(env, shard).listRepos(cursor, limit),
    ),
  );
  const merged = pages.flat().filter(hasCommit).sort(byDid).slice(0, limit);
  const body: { repos: RepoView[]; cursor?: string } = { repos: merged.map(repoView) };
  const last = merged.at(-1);
  if (merged.length === limit && last) body.cursor = last.did;
  return json(body);
};
