import { checkHostname, hostBaseUrl } from "../ingest/hostname";
import { type DidDocumentInfo, parseDidDocument } from "../protocol/did-doc";
import { ProtocolError } from "../protocol/errors";

// Resolves DID documents: did:plc from the PLC directory (PLC_URL), did:web from the domain's
// /.well-known/did.json, on a host that passes the requestCrawl hostname policy (DEV_MODE lets
// did:web name a loopback host with a port, reached over http, as local test setups do), and
// without following redirects (they would lead past that policy). Network failures are
// IdentityUnavailable, a shape the caller can retry; a document that resolves but is malformed
// is InvalidDidDocument.

export class IdentityUnavailable extends Error {
  override readonly name = "IdentityUnavailable";
}

export type ResolverOptions = { plcUrl: string; devMode: boolean; timeoutMs?: number };

const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Where a DID's document is fetched. A did:web names the host to fetch from, and anyone can make
 * up a did:web, so that host passes the same policy as a requestCrawl hostname (hostname.ts):
 * no IP literals, loopback, private or reserved names or ports (DEV_MODE: loopback with a port,
 * over http). atproto allows only hostname-level did:web, so a path (`:` in the identifier) is
 * refused, and `%3A` (the port separator) is the only escape accepted: `%2F` and the like would
 * smuggle a path, a user or another host into the URL.
 */
export function didDocumentUrl(did: string, opts: ResolverOptions): string {
  if (did.startsWith("did:plc:")) return `${opts.plcUrl}/${did}`;
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

export async function resolveDid(did: string, opts: ResolverOptions): Promise<DidDocumentInfo> {
  const url = didDocumentUrl(did, opts);
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { Accept: "application/did+ld+json, application/json" },
      signal: AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      redirect: "manual",
    });
  } catch (err) {
    throw new IdentityUnavailable(`resolving ${did}: ${String(err)}`);
  }
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    throw new ProtocolError("InvalidDidDocument", `${did} document redirects (${res.status})`);
  }
  if (res.status === 404 || res.status === 410) {
    await res.body?.cancel();
    throw new ProtocolError("InvalidDidDocument", `${did} is not registered (${res.status})`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new IdentityUnavailable(`resolving ${did}: HTTP ${res.status}`);
  }
  let doc: unknown;
  try {
    doc = await res.json();
  } catch (err) {
    throw new ProtocolError("InvalidDidDocument", `${did} document is not JSON`, { cause: err });
  }
  const info = parseDidDocument(doc);
  if (info.did !== did)
    throw new ProtocolError("InvalidDidDocument", `document id ${info.did} is not ${did}`);
  return info;
}
