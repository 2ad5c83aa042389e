import { base64 } from "multiformats/bases/base64";
import { CID } from "./cid";
import { ProtocolError } from "./errors";

// The atproto data model in its JSON form (atproto.com/specs/data-model): CID links are
// `{"$link": "<cid>"}`, bytes `{"$bytes": "<base64>"}`, numbers are integers only, `$type` is a
// non-empty string, and blobs are `{"$type": "blob", ref, mimeType, size}`. Converting checks
// all of that, so what comes out encodes to canonical DAG-CBOR.

function invalid(message: string): ProtocolError {
  return new ProtocolError("InvalidDataModel", message);
}

function convert(value: unknown, path: string): unknown {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value))
      throw invalid(`${path}: only integers are allowed, got ${value}`);
    return value;
  }
  if (Array.isArray(value)) return value.map((v, i) => convert(v, `${path}[${i}]`));
  if (typeof value !== "object") throw invalid(`${path}: unsupported value`);
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  if ("$link" in o) {
    if (keys.length !== 1) throw invalid(`${path}: a $link object has no other fields`);
    if (typeof o.$link !== "string") throw invalid(`${path}: $link must be a string`);
    try {
      return CID.parse(o.$link);
    } catch {
      throw invalid(`${path}: $link is not a CID`);
    }
  }
  if ("$bytes" in o) {
    if (keys.length !== 1) throw invalid(`${path}: a $bytes object has no other fields`);
    if (typeof o.$bytes !== "string") throw invalid(`${path}: $bytes must be a base64 string`);
    try {
      return base64.baseDecode(o.$bytes.replace(/=+$/, ""));
    } catch {
      throw invalid(`${path}: $bytes is not base64`);
    }
  }
  if ("$type" in o) {
    if (typeof o.$type !== "string" || o.$type.length === 0)
      throw invalid(`${path}: $type must be a non-empty string`);
    if (o.$type === "blob") {
      const ref = o.ref as Record<string, unknown> | undefined;
      if (!ref || typeof ref !== "object" || typeof ref.$link !== "string")
        throw invalid(`${path}: blob ref must be a link`);
      if (typeof o.mimeType !== "string") throw invalid(`${path}: blob mimeType must be a string`);
      if (typeof o.size !== "number" || !Number.isSafeInteger(o.size))
        throw invalid(`${path}: blob size must be an integer`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const key of keys) out[key] = convert(o[key], `${path}.${key}`);
  return out;
}

/** Converts atproto JSON to data-model values (CIDs, bytes), checking the data model's rules. */
export function jsonToDataModel(json: unknown): Record<string, unknown> {
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw invalid("the top level must be an object");
  return convert(json, "$") as Record<string, unknown>;
}

function toJson(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(toJson);
  if (value instanceof Uint8Array) return { $bytes: base64.baseEncode(value) };
  const cid = CID.asCID(value);
  if (cid) return { $link: cid.toString() };
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key] = toJson(v);
  return out;
}

/**
 * The inverse: decoded DAG-CBOR (CIDs, bytes) in the data model's JSON form, ready for
 * JSON.stringify. Keys keep their decoded order; `$bytes` is base64 without padding, as the spec
 * and @atproto's lex-json write it.
 */
export function dataModelToJson(value: unknown): unknown {
  return toJson(value);
}
