import { type DidDocumentInfo, parseDidDocument } from "../protocol/did-doc";
import { ProtocolError } from "../protocol/errors";

// Resolves DID documents: did:plc from the PLC directory (PLC_URL), did:web from the domain's
// /.well-known/did.json. DEV_MODE lets did:web name a loopback host with a port (reached over
// http), as local test setups do. Network failures are IdentityUnavailable, a shape the caller
// can retry; a document that resolves but is malformed is InvalidDidDocument.

export class IdentityUnavailable extends Error {
  override readonly name = "IdentityUnavailable";
}

export type ResolverOptions = { plcUrl: string; devMode: boolean; timeoutMs?: number };

const DEFAULT_TIMEOUT_MS = 5_000;

export function didDocumentUrl(did: string, opts: ResolverOptions): string {
  if (did.startsWith("did:plc:")) return `${opts.plcUrl}/${did}`;
  if (did.startsWith("did:web:")) {
    const host = decodeURIComponent(did.slice("did:web:".length));
    if (host.includes(":") && !host.startsWith("localhost:") && !host.startsWith("127.0.0.1:")) {
      throw new ProtocolError("InvalidDidDocument", "did:web with a path or port is not supported");
    }
    const loopback = host.startsWith("localhost") || host.startsWith("127.0.0.1");
    if (loopback && !opts.devMode)
      throw new ProtocolError("InvalidDidDocument", "did:web on loopback is refused");
    return `${loopback ? "http" : "https"}://${host}/.well-known/did.json`;
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
    });
  } catch (err) {
    throw new IdentityUnavailable(`resolving ${did}: ${String(err)}`);
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
