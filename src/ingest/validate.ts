import type { IdentityCache } from "../identity/identity-cache";
import { IdentityUnavailable } from "../identity/resolver";
import { verifyCommitSignature } from "../protocol/commit";
import { type DidDocumentInfo, endpointHost } from "../protocol/did-doc";
import { ProtocolError } from "../protocol/errors";
import {
  type CheckedCommit,
  checkAccountEvent,
  checkCommitEvent,
  checkIdentityEvent,
  checkSyncEvent,
} from "../protocol/event-checks";
import type { SequencedFrame } from "../protocol/frame";
import { isValidDid } from "../protocol/syntax";
import { type RepoState, unseenRepo } from "./repo-state";

// What an event must prove before the relay forwards it, given the state the ingester holds.
// Checked, in order (cheap first):
//   1. stateless checks (event-checks.ts): syntax, sizes, CAR/CID integrity, commit shape;
//   2. the account is active and not taken down by the relay (commits/syncs of inactive repos
//      are not forwarded; #account and #identity always are, they carry the status);
//   3. rev strictly increases per repo (repeats and lower revs dropped);
//   4. the DID document names this host as the account's PDS, re-resolved once before
//      dropping in case the account just migrated;
//   5. the commit signature verifies against the document's #atproto key, re-resolved once
//      before dropping in case the key just rotated;
//   6. sync 1.1 continuity: `since` equals the last rev seen and `prevData` the last data CID;
//      a mismatch is recorded on the repo (flagged) but the event still flows, as the
//      reference relay does while the network migrates.
// Not checked here: the seq order on the socket and host rate limits (host-session.ts).

export type DropReason =
  | "InvalidEvent"
  | "RepoInactive"
  | "RevNotIncreasing"
  | "WrongHost"
  | "BadSignature"
  | "NoSigningKey"
  | "IdentityUnavailable"
  | "InvalidIdentity";

export type DropReasonName = DropReason | `InvalidEvent:${string}`;

export type Verdict =
  | { accept: true; did: string; next: RepoState | null; flag?: string }
  | { accept: false; did: string | null; reason: DropReasonName; detail: string };

export type ValidationContext = {
  hostname: string;
  nowMs: number;
  identity: IdentityCache;
  repo: RepoState | undefined;
};

function drop(did: string | null, reason: DropReasonName, detail: string): Verdict {
  return { accept: false, did, reason, detail };
}

function hostOf(doc: DidDocumentInfo): string | null {
  return doc.pdsEndpoint ? endpointHost(doc.pdsEndpoint) : null;
}

/** Resolves the DID and checks the document names `hostname`, re-resolving once if not. */
async function authorisedDocument(
  did: string,
  ctx: ValidationContext,
  forceFresh: boolean,
): Promise<{ ok: true; doc: DidDocumentInfo } | { ok: false; verdict: Verdict }> {
  try {
    let doc = await ctx.identity.get(did, forceFresh);
    if (hostOf(doc) !== ctx.hostname && !forceFresh) doc = await ctx.identity.get(did, true);
    if (hostOf(doc) !== ctx.hostname) {
      return {
        ok: false,
        verdict: drop(
          did,
          "WrongHost",
          `${did} names ${hostOf(doc) ?? "no PDS"}, not ${ctx.hostname}`,
        ),
      };
    }
    return { ok: true, doc };
  } catch (err) {
    if (err instanceof IdentityUnavailable)
      return { ok: false, verdict: drop(did, "IdentityUnavailable", err.message) };
    return { ok: false, verdict: drop(did, "InvalidIdentity", String(err)) };
  }
}

async function verifySigned(
  checked: CheckedCommit,
  ctx: ValidationContext,
): Promise<Verdict | DidDocumentInfo> {
  const authorised = await authorisedDocument(checked.did, ctx, false);
  if (!authorised.ok) return authorised.verdict;
  let doc = authorised.doc;
  if (doc.signingKey && verifyCommitSignature(checked.commit, doc.signingKey)) return doc;
  const refreshed = await authorisedDocument(checked.did, ctx, true);
  if (!refreshed.ok) return refreshed.verdict;
  doc = refreshed.doc;
  if (!doc.signingKey)
    return drop(checked.did, "NoSigningKey", `${checked.did} has no #atproto key`);
  if (!verifyCommitSignature(checked.commit, doc.signingKey)) {
    return drop(
      checked.did,
      "BadSignature",
      `commit ${checked.commitCid} is not signed by ${checked.did}'s key`,
    );
  }
  return doc;
}

function isRepoUsable(repo: RepoState | undefined): boolean {
  return !repo || (repo.active && !repo.relayTakedown);
}

function newRepoState(
  repo: RepoState | undefined,
  checked: CheckedCommit,
  hostname: string,
): RepoState {
  return {
    did: checked.did,
    host: hostname,
    rev: checked.rev,
    head: checked.commitCid.toString(),
    data: checked.commit.data.toString(),
    active: repo?.active ?? true,
    status: repo?.status ?? null,
    relayTakedown: repo?.relayTakedown ?? false,
    flag: repo?.flag ?? null,
  };
}

function stateless<T>(did: string | null, fn: () => T): T | Verdict {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ProtocolError) return drop(did, `InvalidEvent:${err.name}`, err.message);
    throw err;
  }
}

function isVerdict(value: unknown): value is Verdict {
  return typeof value === "object" && value !== null && "accept" in value;
}

export async function validateEvent(
  frame: SequencedFrame,
  ctx: ValidationContext,
): Promise<Verdict> {
  switch (frame.kind) {
    case "commit": {
      const body = frame.body;
      const checked = stateless(body.repo, () => checkCommitEvent(body, ctx.nowMs));
      if (isVerdict(checked)) return checked;
      if (!isRepoUsable(ctx.repo))
        return drop(body.repo, "RepoInactive", `${body.repo} is not active`);
      if (ctx.repo && body.rev <= ctx.repo.rev) {
        return drop(body.repo, "RevNotIncreasing", `rev ${body.rev} is not after ${ctx.repo.rev}`);
      }
      const signed = await verifySigned(checked, ctx);
      if (isVerdict(signed)) return signed;
      const next = newRepoState(ctx.repo, checked, ctx.hostname);
      let flag: string | undefined;
      if (ctx.repo && body.since !== ctx.repo.rev)
        flag = `since ${body.since} but last rev seen was ${ctx.repo.rev}`;
      else if (ctx.repo?.data && body.prevData && body.prevData.toString() !== ctx.repo.data) {
        flag = `prevData ${body.prevData} but last data seen was ${ctx.repo.data}`;
      }
      if (flag) next.flag = flag;
      return flag
        ? { accept: true, did: body.repo, next, flag }
        : { accept: true, did: body.repo, next };
    }
    case "sync": {
      const body = frame.body;
      const checked = stateless(body.did, () => checkSyncEvent(body, ctx.nowMs));
      if (isVerdict(checked)) return checked;
      if (!isRepoUsable(ctx.repo))
        return drop(body.did, "RepoInactive", `${body.did} is not active`);
      if (ctx.repo && body.rev < ctx.repo.rev) {
        return drop(body.did, "RevNotIncreasing", `sync rev ${body.rev} is before ${ctx.repo.rev}`);
      }
      const signed = await verifySigned(checked, ctx);
      if (isVerdict(signed)) return signed;
      // a #sync resets the repo's continuity: the next commit's since/prevData follow from it
      const next = newRepoState(ctx.repo, checked, ctx.hostname);
      next.flag = null;
      return { accept: true, did: body.did, next };
    }
    case "identity": {
      const did = frame.body.did;
      const checked = stateless(isValidDid(did) ? did : null, () => checkIdentityEvent(frame.body));
      if (isVerdict(checked)) return checked;
      // refresh before any later event of this DID is checked
      ctx.identity.invalidate(did);
      const authorised = await authorisedDocument(did, ctx, true);
      if (!authorised.ok) return authorised.verdict;
      return { accept: true, did, next: null };
    }
    case "account": {
      const { did, active, status } = frame.body;
      const checked = stateless(isValidDid(did) ? did : null, () => checkAccountEvent(frame.body));
      if (isVerdict(checked)) return checked;
      const authorised = await authorisedDocument(did, ctx, false);
      if (!authorised.ok) return authorised.verdict;
      const base: RepoState = ctx.repo ?? unseenRepo(did, ctx.hostname);
      return {
        accept: true,
        did,
        next: {
          ...base,
          host: ctx.hostname,
          active,
          status: active ? null : (status ?? "deactivated"),
        },
      };
    }
    default: {
      const unreachable: never = frame;
      throw new Error(`unhandled frame ${JSON.stringify(unreachable)}`);
    }
  }
}
