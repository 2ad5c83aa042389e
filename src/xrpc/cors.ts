import { XrpcError } from "./errors";
import type { XrpcHandler } from "./params";

// Public, read-only history (GET /segments, /segments/<name>) is meant for clients in browsers
// too, on any origin: every answer, errors included (a client must see a 404 to plan again),
// allows any origin and exposes the headers a download needs. If-None-Match is not a
// CORS-safelisted request header, so browsers send a preflight, answered here.

const CORS_HEADERS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Expose-Headers": "ETag, Content-Length, Content-Range, Accept-Ranges",
};

const PREFLIGHT_HEADERS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "GET, HEAD",
  "Access-Control-Allow-Headers": "Range, If-None-Match",
  "Access-Control-Max-Age": "86400",
};

export function withPublicCors(handler: XrpcHandler): XrpcHandler {
  return async (request, env, config, ctx) => {
    if (request.method === "OPTIONS")
      return new Response(null, { status: 204, headers: PREFLIGHT_HEADERS });
    let response: Response;
    try {
      response = await handler(request, env, config, ctx);
    } catch (err) {
      if (!(err instanceof XrpcError)) throw err;
      response = err.toResponse();
    }
    // a cached response's headers are immutable: copy (the body stream is passed on, not read)
    const copy = new Response(response.body, response);
    for (const [name, value] of Object.entries(CORS_HEADERS)) copy.headers.set(name, value);
    return copy;
  };
}
