// XRPC errors are JSON `{"error": "Name", "message": "..."}` (atproto HTTP API spec) with the
// status that says whose fault it is: 400 bad parameters, 401/403 auth, 404 unknown things,
// 429 limits, 5xx only for the relay's own faults.

export const SERVER_HEADER = "freehose atproto-relay";

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
  ) {
    super(message);
  }

  toResponse(): Response {
    return xrpcError(this.status, this.error, this.message);
  }
}
