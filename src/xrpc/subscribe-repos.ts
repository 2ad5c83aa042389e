import { readConfig } from "../config";
import type { Env } from "../env";
import { CURSOR_HEADER, FANOUT_NAME_HEADER } from "../fanout/fanout";
import { parseCursorParam } from "../protocol/cursor";
import { fanoutStub } from "../stubs";
import { invalidRequest, xrpcError } from "./errors";

/**
 * `com.atproto.sync.subscribeRepos`: checks the cursor before the upgrade (a bad one is a plain
 * XRPC 400), then hands the socket to one Fanout shard. Shards are picked at random: consumers
 * are independent, so an even spread is all that matters.
 */
export async function handleSubscribeRepos(request: Request, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const cursor = parseCursorParam(url.searchParams.get("cursor"));
  if (!cursor.ok) return invalidRequest(cursor.message);
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return xrpcError(
      426,
      "InvalidRequest",
      "subscribeRepos is a WebSocket endpoint: send Upgrade: websocket",
    );
  }
  const shards = readConfig(env).fanoutShards;
  const name = `fanout-${Math.floor(Math.random() * shards)}`;
  const headers = new Headers(request.headers);
  headers.set(FANOUT_NAME_HEADER, name);
  headers.set(CURSOR_HEADER, cursor.cursor === null ? "" : String(cursor.cursor));
  const stub = fanoutStub(env, name);
  return stub.fetch(new Request(request.url, { headers }));
}
