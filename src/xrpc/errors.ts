// XRPC errors are JSON `{"error": "Name", "message": "..."}` (atproto HTTP API spec) with the
// status that says whose fault it is: 400 bad parameters (and the errors a lexicon declares),
// 401/403 auth, 404 unknown things, 429 limits, 5xx only for the relay's own faults.

/**
 * Sent on every response. The reference relay's loop guard: a relay refuses to crawl a host
 * whose Server header contains `atproto-relay`, so relays never subscribe to each other (or to
 * themselves) through requestCrawl.
 */
export const SERVER_HEADER = "freehose atproto-relay";
export const RELAY_SERVER_MARKER = "atproto-relay";

/** True when a response's Server header says it comes from a relay. */
export function isRelayServerHeader(value: string | null): boolean {
  return value?.toLowerCase().includes(RELAY_SERVER_MARKER) ?? false;
}

export function xrpcError(
  status: number,
  error: string,
  message: string,
  headers?: HeadersInit,
): Response {
  const response = Response.json({ error, message }, { status, headers });
  response.headers.set("Server", SERVER_HEADER);
  return response;
}

export function invalidRequest(message: string): Response {
  return xrpcError(400, "InvalidRequest", message);
}

export function json(body: unknown, status = 200): Response {
  return Response.json(body, { status, headers: { Server: SERVER_HEADER } });
}

/** Thrown by handlers for an expected error; the router turns it into the response. */
export class XrpcError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
    /** Sent with the answer (e.g. `Retry-After` with a 429). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  toResponse(): Response {
    return xrpcError(this.status, this.error, this.message, this.headers);
  }
}
