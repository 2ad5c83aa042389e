import { checkHostname, hostBaseUrl } from "../ingest/hostname";
import { type DidDocumentInfo, parseDidDocument } from "../protocol/did-doc";
import { ProtocolError } from "../protocol/errors";
import { type HealthChange, type PlcBackoff, PlcSources } from "./plc-sources";

// Resolves DID documents: did:plc from the PLC directories of PLC_URL (plc.directory and any
// mirrors, in order, with health tracking: plc-sources.ts), did:web from the domain's
// /.well-known/did.json, on a host that passes the requestCrawl hostname policy (DEV_MODE lets
// did:web name a loopback host with a port, reached over http, as local test setups do), and
// without following redirects (they would lead past that policy). Network failures are
// IdentityUnavailable, a shape the caller can retry; a document that resolves but is malformed
// is InvalidDidDocument.
//
// did:plc and several sources: a source that fails is skipped while it backs off and the next
// one is asked. A 404 (or 410) is an answer, yet the next source is still asked: a mirror lags
// plc.directory by seconds to minutes, so a new account's first events may reach us before the
// mirror has its DID, and the mirror may be listed first. The DID is "not registered" only when
// no source had it and at least one said so; when none answered, the look-up is
// IdentityUnavailable. A directory that answers with something that is not a document (a
// redirect, a body that is not JSON, another DID's document) is broken, not a verdict: it backs
// off like a failed one and the next source is asked. The reference implementations (indigo's ResolveDIDPLC, @atproto/identity's
// DidPlcResolver) take one directory and read its 404 as "not found"; with a single PLC_URL this
// resolver does the same.

export class IdentityUnavailable extends Error {
  override readonly name = "IdentityUnavailable";
}

export type ResolverOptions = {
  /** PLC directories, in the order they are asked (Config.plcUrls). */
  plcUrls: readonly string[];
  devMode: boolean;
  timeoutMs?: number;
  /** How long a failed PLC source is skipped (tests shorten it). */
  plcBackoff?: PlcBackoff;
};

const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Where a did:web's document is fetched. A did:web names the host to fetch from, and anyone can
 * make up a did:web, so that host passes the same policy as a requestCrawl hostname
 * (hostname.ts): no IP literals, loopback, private or reserved names or ports (DEV_MODE:
 * loopback with a port, over http). atproto allows only hostname-level did:web, so a path (`:`
 * in the identifier) is refused, and `%3A` (the port separator) is the only escape accepted:
 * `%2F` and the like would smuggle a path, a user or another host into the URL.
 */
export function didDocumentUrl(did: string, opts: { devMode: boolean }): string {
  if (did.startsWith("did:web:")) {
    const id = did.slice("did:web:".length);
    if (id.includes(":"))
      throw new ProtocolError("InvalidDidDocument", "did:web with a path is not supported");
    const host = id.replace(/%3a/gi, ":");
    if (host.includes("%"))
      throw new ProtocolError("InvalidDidDocument", "did:web with escapes other than %3A");
    const checked = checkHostname(host, opts.devMode);
    if (!checked.ok)
      throw new ProtocolError("InvalidDidDocument", `did:web host refused: ${checked.message}`);
    return `${hostBaseUrl(checked.hostname, "http")}/.well-known/did.json`;
  }
  throw new ProtocolError("InvalidDidDocument", `unsupported DID method: ${did.slice(0, 40)}`);
}

/** What one source answered about one DID. */
type Answer =
  | { kind: "document"; info: DidDocumentInfo }
  /** 404 or 410: the source does not know the DID. */
  | { kind: "notFound"; error: ProtocolError }
  /** The source did not answer: network error, timeout, 5xx, 408 or 429. */
  | { kind: "sourceFailed"; error: IdentityUnavailable }
  /** The source answered, but with no document: another 4xx. */
  | { kind: "refused"; error: IdentityUnavailable }
  /**
   * Not a document at all: a redirect, a body that is not JSON, or another DID's document. From
   * a did:web host it is the account's own fault; from a PLC directory, which generates every
   * document, it means the source is broken (a misconfigured mirror, a proxy's error page).
   */
  | { kind: "garbled"; error: ProtocolError };

export class DidResolver {
  readonly plcSources: PlcSources;
  readonly #opts: ResolverOptions;
  readonly #onHealthChange: (change: HealthChange) => void;

  constructor(
    opts: ResolverOptions,
    onHealthChange: (change: HealthChange) => void = logHealthChange,
    now: () => number = Date.now,
  ) {
    this.#opts = opts;
    this.plcSources = new PlcSources(opts.plcUrls, now, opts.plcBackoff);
    this.#onHealthChange = onHealthChange;
  }

  async resolve(did: string): Promise<DidDocumentInfo> {
    if (!did.startsWith("did:plc:")) {
      const answer = await this.#fetch(did, didDocumentUrl(did, this.#opts));
      if (answer.kind === "document") return answer.info;
      throw answer.error;
    }
    let notFound: ProtocolError | null = null;
    let unavailable: Error | null = null;
    for (const base of this.plcSources.toAsk()) {
      const answer = await this.#fetch(did, `${base}/${did}`);
      const broken = answer.kind === "sourceFailed" || answer.kind === "garbled";
      const change = broken ? this.plcSources.failed(base) : this.plcSources.answered(base);
      if (change) this.#onHealthChange(change);
      if (answer.kind === "document") return answer.info;
      if (answer.kind === "notFound") notFound ??= answer.error;
      else
        unavailable ??=
          answer.kind === "garbled"
            ? new IdentityUnavailable(`${originOf(base)}: ${answer.error.message}`)
            : answer.error;
    }
    if (notFound) throw notFound;
    throw unavailable ?? new IdentityUnavailable(`resolving ${did}: no PLC source answered`);
  }

  async #fetch(did: string, url: string): Promise<Answer> {
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { Accept: "application/did+ld+json, application/json" },
        signal: AbortSignal.timeout(this.#opts.timeoutMs ?? DEFAULT_TIMEOUT_MS),
        redirect: "manual",
      });
    } catch (err) {
      const error = new IdentityUnavailable(`resolving ${did} at ${originOf(url)}: ${String(err)}`);
      return { kind: "sourceFailed", error };
    }
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      const error = new ProtocolError(
        "InvalidDidDocument",
        `${did} document redirects (${res.status})`,
      );
      return { kind: "garbled", error };
    }
    if (res.status === 404 || res.status === 410) {
      await res.body?.cancel();
      const error = new ProtocolError(
        "InvalidDidDocument",
        `${did} is not registered (${res.status})`,
      );
      return { kind: "notFound", error };
    }
    if (!res.ok) {
      await res.body?.cancel();
      const error = new IdentityUnavailable(
        `resolving ${did} at ${originOf(url)}: HTTP ${res.status}`,
      );
      const sourceFailed = res.status >= 500 || res.status === 408 || res.status === 429;
      return { kind: sourceFailed ? "sourceFailed" : "refused", error };
    }
    let doc: unknown;
    try {
      doc = await res.json();
    } catch (err) {
      const error = new ProtocolError("InvalidDidDocument", `${did} document is not JSON`, {
        cause: err,
      });
      return { kind: "garbled", error };
    }
    // a document that parses but is unusable is a verdict about the account, from any source
    const info = parseDidDocument(doc);
    if (info.did !== did) {
      const error = new ProtocolError(
        "InvalidDidDocument",
        `document id ${info.did} is not ${did}`,
      );
      return { kind: "garbled", error };
    }
    return { kind: "document", info };
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url.slice(0, 60);
  }
}

/** One JSON line per change of a PLC source's health, none per look-up. */
function logHealthChange(change: HealthChange): void {
  const msg = change.kind === "unhealthy" ? "plc source unhealthy" : "plc source recovered";
  console.log(JSON.stringify({ msg, ...change }));
}
