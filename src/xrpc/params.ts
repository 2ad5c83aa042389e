import { XrpcError } from "./errors";

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

export function requireMethod(request: Request, method: "GET" | "POST"): void {
  if (request.method !== method && !(method === "GET" && request.method === "HEAD")) {
    throw new XrpcError(405, "InvalidRequest", `use ${method}`);
  }
}
