import {
  IDENTITY_RECHECK_AFTER_MS,
  IDENTITY_TTL_MS,
  type IdentityCache,
} from "../identity/identity-cache";
import { IdentityUnavailable } from "../identity/resolver";
import { cidKey } from "../protocol/cid";
import { verifyCommitSignatureAsync } from "../protocol/commit";
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
//      dropping in case the account just migrated (unless it was fetched in the last
//      IDENTITY_RECHECK_AFTER_MS: a burst of refused events costs one look-up);
//   5. the commit signature verifies against the document's #atproto key, re-resolved once
//      (same bound) before dropping in case the key just rotated;
//   6. sync 1.1 continuity: `since` equals the last rev seen and `prevData` the last data CID;
//      a mismatch is recorded on the repo (flagged) but the event still flows, as the
//      reference relay does while the network migrates.
// Not checked here: the seq order on the socket and host rate limits (host-session.ts).
//
// Identity look-ups are bounded by the cache (identity-cache.ts); when a look-up cannot be made
// (the directory is down or the host spent its look-up budget) the verdict is
// `IdentityUnavailable`, which the ingester treats as retryable: it stalls the host and reads
// the event again later instead of skipping it.
//
// Migrations: each ingester caches documents for its own hosts, so when an account moves, the
// object holding its old host must forget its copy, or the old PDS would keep speaking for the
// account until the copy expires. When a freshly resolved document names this host and the
// account was last known on another one (from the cached document, the account's state here,
// or, for an #identity of an account this object has never seen, the RepoIndex), the verdict
// carries `movedFrom` and `ctx.identityMoves.moved` is told, once per migration (after it the
// cached document names this host).

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
  | {
      accept: true;
      did: string;
      next: RepoState | null;
      flag?: string;
      /** The account's previous host: this event is the first one seen after it moved here. */
      movedFrom?: string;
    }
  | { accept: false; did: string | null; reason: DropReasonName; detail: string };

/** What validation needs of the rest of the relay to spread a migration (identity-moves.ts). */
export type IdentityMoves = {
  /** The host the relay last saw the account on (RepoIndex), or null. */
  previousHost(did: string): Promise<string | null>;
  /** Makes the ingester holding `oldHost` forget its cached document (HostDirectory). */
  moved(did: string, oldHost: string): Promise<void>;
};

export type ValidationContext = {
  hostname: string;
  nowMs: number;
  identity: IdentityCache;
  repo: RepoState | undefined;
  /** Absent: a migration is still reported in `movedFrom`, but no one else is told. */
  identityMoves?: IdentityMoves;
};

function drop(did: string | null, reason: DropReasonName, detail: string): Verdict {
  return { accept: false, did, reason, detail };
}

function hostOf(doc: DidDocumentInfo): string | null {
  return doc.pdsEndpoint ? endpointHost(doc.pdsEndpoint) : null;
}

type Authorised = { ok: true; doc: DidDocumentInfo; movedFrom: string | null };

/**
 * Resolves the DID (a cached document up to `maxAgeMs` old) and checks the document names
 * `hostname`, looking again once if not (unless the document is younger than
 * IDENTITY_RECHECK_AFTER_MS). `movedFrom`: the host the cached document named before a fresh
 * one named this host.
 */
async function authorisedDocument(
  did: string,
  ctx: ValidationContext,
  maxAgeMs: number,
): Promise<Authorised | { ok: false; verdict: Verdict }> {
  const lookup = { host: ctx.hostname };
  try {
    const cached = ctx.identity.peek(did);
    const cachedHost = cached ? hostOf(cached) : null;
    let doc = await ctx.identity.get(did, { ...lookup, maxAgeMs });
    if (hostOf(doc) !== ctx.hostname)
      doc = await ctx.identity.get(did, { ...lookup, maxAgeMs: IDENTITY_RECHECK_AFTER_MS });
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
    const movedFrom = cachedHost !== null && cachedHost !== ctx.hostname ? cachedHost : null;
    return { ok: true, doc, movedFrom };
  } catch (err) {
    if (err instanceof IdentityUnavailable)
      return { ok: false, verdict: drop(did, "IdentityUnavailable", err.message) };
    return { ok: false, verdict: drop(did, "InvalidIdentity", String(err)) };
  }
}

async function verifySigned(
  checked: CheckedCommit,
  ctx: ValidationContext,
): Promise<Verdict | Authorised> {
  const authorised = await authorisedDocument(checked.did, ctx, IDENTITY_TTL_MS);
  if (!authorised.ok) return authorised.verdict;
  const key = authorised.doc.signingKey;
  if (key && (await verifyCommitSignatureAsync(checked.commit, key))) return authorised;
  const refreshed = await authorisedDocument(checked.did, ctx, IDENTITY_RECHECK_AFTER_MS);
  if (!refreshed.ok) return refreshed.verdict;
  const doc = refreshed.doc;
  if (!doc.signingKey)
    return drop(checked.did, "NoSigningKey", `${checked.did} has no #atproto key`);
  if (!(await verifyCommitSignatureAsync(checked.commit, doc.signingKey))) {
    return drop(
      checked.did,
      "BadSignature",
      `commit ${checked.commitCid} is not signed by ${checked.did}'s key`,
    );
  }
  return { ...refreshed, movedFrom: authorised.movedFrom ?? refreshed.movedFrom };
}

/**
 * The host an account moved here from, if any, and tells the relay (once per migration: the
 * cached document names this host afterwards). An #identity of an account this object knows
 * nothing of asks the RepoIndex; other events rely on what is cached here.
 */
async function noteMove(
  did: string,
  authorised: Authorised,
  ctx: ValidationContext,
  askIndex: boolean,
): Promise<string | undefined> {
  let from =
    authorised.movedFrom ?? (ctx.repo && ctx.repo.host !== ctx.hostname ? ctx.repo.host : null);
  if (from === null && askIndex && !ctx.repo && ctx.identityMoves) {
    try {
      const indexed = await ctx.identityMoves.previousHost(did);
      if (indexed !== null && indexed !== ctx.hostname) from = indexed;
    } catch {
      // best effort: the old host's copy still expires with its TTL
    }
  }
  if (from === null) return undefined;
  try {
    await ctx.identityMoves?.moved(did, from);
  } catch {
    // best effort, as above
  }
  return from;
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
    head: cidKey(checked.commitCid),
    data: cidKey(checked.commit.data),
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

function accepted(
  did: string,
  next: RepoState | null,
  movedFrom: string | undefined,
  flag?: string,
): Verdict {
  const verdict: Verdict = { accept: true, did, next };
  if (flag) verdict.flag = flag;
  if (movedFrom) verdict.movedFrom = movedFrom;
  return verdict;
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
      const movedFrom = await noteMove(body.repo, signed, ctx, false);
      const next = newRepoState(ctx.repo, checked, ctx.hostname);
      let flag: string | undefined;
      // rev "" means no commit of the account was seen (only its #account or #identity): there
      // is nothing to continue from, so a new account's first commit (since null) is no mismatch
      if (ctx.repo && ctx.repo.rev !== "" && body.since !== ctx.repo.rev)
        flag = `since ${body.since} but last rev seen was ${ctx.repo.rev}`;
      else if (ctx.repo?.data && body.prevData && cidKey(body.prevData) !== ctx.repo.data) {
        flag = `prevData ${body.prevData} but last data seen was ${ctx.repo.data}`;
      }
      if (flag) next.flag = flag;
      return accepted(body.repo, next, movedFrom, flag);
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
      const movedFrom = await noteMove(body.did, signed, ctx, false);
      // a #sync resets the repo's continuity: the next commit's since/prevData follow from it
      const next = newRepoState(ctx.repo, checked, ctx.hostname);
      next.flag = null;
      return accepted(body.did, next, movedFrom);
    }
    case "identity": {
      const did = frame.body.did;
      const checked = stateless(isValidDid(did) ? did : null, () => checkIdentityEvent(frame.body));
      if (isVerdict(checked)) return checked;
      // the event says the document changed: look again unless the copy is just fetched
      const authorised = await authorisedDocument(did, ctx, IDENTITY_RECHECK_AFTER_MS);
      if (!authorised.ok) return authorised.verdict;
      return accepted(did, null, await noteMove(did, authorised, ctx, true));
    }
    case "account": {
      const { did, active, status } = frame.body;
      const checked = stateless(isValidDid(did) ? did : null, () => checkAccountEvent(frame.body));
      if (isVerdict(checked)) return checked;
      const authorised = await authorisedDocument(did, ctx, IDENTITY_TTL_MS);
      if (!authorised.ok) return authorised.verdict;
      const movedFrom = await noteMove(did, authorised, ctx, false);
      const base: RepoState = ctx.repo ?? unseenRepo(did, ctx.hostname);
      return accepted(
        did,
        { ...base, host: ctx.hostname, active, status: active ? null : (status ?? "deactivated") },
        movedFrom,
      );
    }
    default: {
      const unreachable: never = frame;
      throw new Error(`unhandled frame ${JSON.stringify(unreachable)}`);
    }
  }
}
