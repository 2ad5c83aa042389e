import { type Curve, type PublicKey, parseLegacyMultibaseKey, parseMultikey } from "./did-key";
import { ProtocolError } from "./errors";
import { isValidDid, isValidHandle } from "./syntax";

// What the relay needs from a DID document (atproto DID spec): the `#atproto` signing key, the
// `#atproto_pds` service endpoint (the host allowed to speak for the account) and the handle
// claimed in `alsoKnownAs`. Both key forms are accepted: `Multikey` (current) and the older
// `EcdsaSecp256k1VerificationKey2019` / `EcdsaSecp256r1VerificationKey2019` with a bare point.

export type DidDocumentInfo = {
  did: string;
  signingKey: PublicKey | null;
  pdsEndpoint: string | null;
  handle: string | null;
};

const LEGACY_KEY_TYPES: Record<string, Curve> = {
  EcdsaSecp256k1VerificationKey2019: "secp256k1",
  EcdsaSecp256r1VerificationKey2019: "p256",
};

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function invalid(message: string): ProtocolError {
  return new ProtocolError("InvalidDidDocument", message);
}

function matchesFragment(id: unknown, did: string, fragment: string): boolean {
  return id === fragment || id === `${did}${fragment}`;
}

function parseSigningKey(doc: Obj, did: string): PublicKey | null {
  const methods = doc.verificationMethod;
  if (methods === undefined) return null;
  if (!Array.isArray(methods)) throw invalid("verificationMethod must be an array");
  const method = methods.find((m) => isObj(m) && matchesFragment(m.id, did, "#atproto"));
  if (!isObj(method)) return null;
  const multibase = method.publicKeyMultibase;
  if (typeof multibase !== "string") throw invalid("#atproto key has no publicKeyMultibase");
  const type = method.type;
  if (type === "Multikey") return parseMultikey(multibase);
  const legacyCurve = typeof type === "string" ? LEGACY_KEY_TYPES[type] : undefined;
  if (legacyCurve) return parseLegacyMultibaseKey(legacyCurve, multibase);
  throw invalid(`unsupported verification method type ${String(type)}`);
}

function parsePdsEndpoint(doc: Obj, did: string): string | null {
  const services = doc.service;
  if (services === undefined) return null;
  if (!Array.isArray(services)) throw invalid("service must be an array");
  const service = services.find((s) => isObj(s) && matchesFragment(s.id, did, "#atproto_pds"));
  if (!isObj(service)) return null;
  if (service.type !== "AtprotoPersonalDataServer") return null;
  const endpoint = service.serviceEndpoint;
  if (typeof endpoint !== "string" || endpointHost(endpoint) === null) return null;
  return endpoint;
}

function parseHandle(doc: Obj): string | null {
  const aka = doc.alsoKnownAs;
  if (!Array.isArray(aka)) return null;
  for (const entry of aka) {
    if (typeof entry === "string" && entry.startsWith("at://")) {
      const handle = entry.slice("at://".length).toLowerCase();
      return isValidHandle(handle) ? handle : null;
    }
  }
  return null;
}

/** Extracts the atproto parts of a DID document. Throws InvalidDidDocument on a bad shape. */
export function parseDidDocument(doc: unknown): DidDocumentInfo {
  if (!isObj(doc)) throw invalid("DID document is not an object");
  const did = doc.id;
  if (typeof did !== "string" || !isValidDid(did))
    throw invalid("DID document id is not a valid DID");
  return {
    did,
    signingKey: parseSigningKey(doc, did),
    pdsEndpoint: parsePdsEndpoint(doc, did),
    handle: parseHandle(doc),
  };
}

/** The host part of a PDS endpoint, as hosts are named in requestCrawl (`host[:port]`). */
export function endpointHost(endpoint: string): string | null {
  // pure code has no URL global: the authority of an http(s) URL without userinfo
  const match = /^https?:\/\/([a-zA-Z0-9.-]+|\[[0-9a-fA-F:.]+\])(:[0-9]{1,5})?(?:[/?#]|$)/.exec(
    endpoint,
  );
  if (!match) return null;
  const host = (match[1] as string).toLowerCase().replace(/\.$/, "");
  const port = match[2] ?? "";
  const isDefaultPort = port === (endpoint.startsWith("https:") ? ":443" : ":80");
  return isDefaultPort ? host : host + port;
}
