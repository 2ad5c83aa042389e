import type { HostEntry } from "../ingest/host-directory";
import type { RepoEntry } from "../ingest/repo-index";

// Lexicon-shaped views of directory and index entries: exactly the fields the
// com.atproto.sync.* lexicons define, no more (tests validate them against src/lexicons).

/** com.atproto.sync.listHosts#host, also the getHostStatus output. */
export type HostView = { hostname: string; seq?: number; accountCount: number; status: string };

export function hostView(entry: HostEntry): HostView {
  const view: HostView = {
    hostname: entry.hostname,
    accountCount: entry.accountCount,
    status: entry.status,
  };
  // seq is "recent repo stream event sequence number": unknown until the first event is durable
  if (entry.cursor !== null) view.seq = entry.cursor;
  return view;
}

/** com.atproto.sync.listRepos#repo; only for entries with a commit (head and rev are required). */
export type RepoView = { did: string; head: string; rev: string; active: boolean; status?: string };

export function repoView(entry: RepoEntry & { head: string }): RepoView {
  const view: RepoView = { did: entry.did, head: entry.head, rev: entry.rev, active: entry.active };
  if (!entry.active && entry.status) view.status = entry.status;
  return view;
}

/** com.atproto.sync.getRepoStatus output: rev only "if active=true", status only if not. */
export type RepoStatusView = { did: string; active: boolean; status?: string; rev?: string };

export function repoStatusView(entry: RepoEntry): RepoStatusView {
  const view: RepoStatusView = { did: entry.did, active: entry.active };
  if (!entry.active && entry.status) view.status = entry.status;
  if (entry.active && entry.rev) view.rev = entry.rev;
  return view;
}
