import { verifyCommitSignatureAsync } from "../protocol/commit";
import { parseDidDocument } from "../protocol/did-doc";
import type { PublicKey } from "../protocol/did-key";
import {
  type CheckedCommit,
  checkAccountEvent,
  checkCommitEvent,
  checkIdentityEvent,
  checkSyncEvent,
} from "../protocol/event-checks";
import type { ReplayEvent } from "./events";
import type { FetchFunction } from "./runtime";
import { ReplayVerificationError } from "./verification-error";

// `verify: true`: every event is checked with the relay's own protocol core (the checks a
// HostIngester makes before it accepts an event): frame and fields, CAR and block CIDs, the
// commit's did and rev, the MST proof of sync 1.1 commits, and the commit's signature against
// the `#atproto` key of the account's DID document. What needs the account's history (rev order,
// `since`/`prevData` continuity) is not checked: a replay may start anywhere.
//
// This module is loaded only when verification is asked for: its signature code loads
// libsecp256k1's WebAssembly from node_modules, which works in Node, not in a browser bundle.

export type VerifyOptions = {
  /** Where did:plc documents are resolved (default https://plc.directory). */
  plcUrl?: string;
  /** Replaces DID resolution: the account's current `#atproto` signing key, or null. */
  resolveKey?: (did: string) => Promise<PublicKey | null>;
};

export type Verifier = (event: ReplayEvent) => Promise<void>;

/** did:plc from the PLC directory, did:web from the host's /.well-known/did.json. */
function documentUrl(did: string, plcUrl: string): string {
  if (did.startsWith("did:plc:")) return `${plcUrl.replace(/\/+$/, "")}/${did}`;
  if (did.startsWith("did:web:")) {
    const host = decodeURIComponent(did.slice("did:web:".length));
    const scheme = /^(localhost|127\.0\.0\.1)(:\d+)?$/.test(host) ? "http" : "https";
    return `${scheme}://${host}/.well-known/did.json`;
  }
  throw new Error(`unsupported DID method: ${did.slice(0, 40)}`);
}

export function createVerifier(options: VerifyOptions, fetch: FetchFunction): Verifier {
  const plcUrl = options.plcUrl ?? "https://plc.directory";
  const resolveKey =
    options.resolveKey ??
    (async (did: string) => {
      const res = await fetch(documentUrl(did, plcUrl));
      if (!res.ok) throw new Error(`resolving ${did}: HTTP ${res.status}`);
      return parseDidDocument(await res.json()).signingKey;
    });
  const keys = new Map<string, Promise<PublicKey | null>>();
  const keyOf = (did: string, fresh: boolean) => {
    let key = keys.get(did);
    if (!key || fresh) {
      key = resolveKey(did);
      keys.set(did, key);
      key.catch(() => keys.delete(did));
    }
    return key;
  };

  const checkSignature = async (checked: CheckedCommit): Promise<string | null> => {
    // a key rotated since the cached document: resolve once more before calling it forged
    for (const fresh of [false, true]) {
      const key = await keyOf(checked.did, fresh);
      if (key && (await verifyCommitSignatureAsync(checked.commit, key))) return null;
      if (!key && fresh) return `${checked.did} has no #atproto signing key`;
    }
    return `commit signature of ${checked.did} rev ${checked.rev} does not verify`;
  };

  return async (event) => {
    let failure: string | null = null;
    try {
      // events are historical: a rev is judged against the time of the event, not of the replay
      const now =
        Date.parse(event.type === "#commit" || event.type === "#sync" ? event.body.time : "") ||
        Date.now();
      switch (event.type) {
        case "#commit":
          failure = await checkSignature(checkCommitEvent(event.body, now));
          break;
        case "#sync":
          failure = await checkSignature(checkSyncEvent(event.body, now));
          break;
        case "#identity":
          checkIdentityEvent(event.body);
          keys.delete(event.body.did);
          break;
        case "#account":
          checkAccountEvent(event.body);
          break;
      }
    } catch (err) {
      throw new ReplayVerificationError(
        event.seq,
        err instanceof Error ? err.message : String(err),
        {
          cause: err,
        },
      );
    }
    if (failure) throw new ReplayVerificationError(event.seq, failure);
  };
}
