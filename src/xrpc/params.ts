import type { Config } from "../config";
import type { Env } from "../env";
import { isValidDid } from "../protocol/syntax";
import { XrpcError } from "./errors";

/**
 * Every handler gets the configuration from the router instead of reading it itself, so a test
 * can call a handler (or the router) with another configuration, e.g. DEV_MODE off.
 */
export type XrpcHandler = (
  request: Request,
  env: Env,
  config: Config,
  /** The Worker's, for work that outlives the response (a cache fill); absent in some tests. */
  ctx?: ExecutionContext,
) => Promise<Response>;

/** Reads an integer query parameter within [min, max], with a default; 400 otherwise. */
export function intParam(
  url: URL,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === "") return fallback;
  if (!/^-?\d+$/.test(raw))
    throw new XrpcError(400, "InvalidRequest", `${name} must be an integer`);
  const n = Number(raw);
  if (n < min || n > max)
    throw new XrpcError(400, "InvalidRequest", `${name} must be between ${min} and ${max}`);
  return n;
}

export function requiredParam(url: URL, name: string): string {
  const value = url.searchParams.get(name);
  if (value === null || value === "")
    throw new XrpcError(400, "InvalidRequest", `${name} is required`);
  return value;
}

/** The `did` parameter of the repo endpoints: required and syntactically a DID. */
export function didParam(url: URL): string {
  const did = requiredParam(url, "did");
  if (!isValidDid(did)) throw new XrpcError(400, "InvalidRequest", "did is not a valid DID");
  return did;
}

/** A numeric cursor we issued; anything else is the caller's mistake. */
export function positionCursorParam(url: URL): number | null {
  const raw = url.searchParams.get("cursor");
  if (raw === null || raw === "") return null;
  if (!/^\d{1,15}$/.test(raw)) throw new XrpcError(400, "InvalidRequest", "cursor is not valid");
  return Number(raw);
}

export function requireMethod(request: Request, method: "GET" | "POST"): void {
  if (request.method !== method && !(method === "GET" && request.method === "HEAD")) {
    throw new XrpcError(405, "InvalidRequest", `use ${method}`);
  }
}

/** A procedure's JSON object input; 400 for anything else. */
export async function readJsonObject(request: Request): Promise<Record<string, unknown>> {
  try {
    const value: unknown = await request.json();
    if (typeof value === "object" && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // not JSON: same answer as a JSON value that is not an object
  }
  throw new XrpcError(400, "InvalidRequest", "the body must be a JSON object");
}

/** A required non-empty string field of a procedure's input. */
export function stringField(input: Record<string, unknown>, key: string): string {
  const value = input[key];
  if (typeof value !== "string" || value === "")
    throw new XrpcError(400, "InvalidRequest", `${key} is required (a string)`);
  return value;
}
