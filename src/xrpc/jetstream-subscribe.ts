import { type Config, readConfig } from "../config";
import type { Env } from "../env";
import { FANOUT_NAME_HEADER, JETSTREAM_HEADER } from "../fanout/fanout";
import { fanoutName } from "../fanout/regions";
import { parseSubscribeParams } from "../jetstream/options";
import { fanoutStub } from "../stubs";
import { invalidRequest, xrpcError } from "./errors";
import { regionOf } from "./subscribe-repos";

/**
 * Jetstream's `GET /subscribe` (jetstream/): the query is checked before the upgrade (a bad one
 * is a 400), then the socket goes to a Fanout shard of the consumer's region exactly as a
 * subscribeRepos consumer's does; the Fanout reads the options from the URL.
 * `compress=true` (or `Socket-Encoding: zstd`) is read there too (jetstream/zstd.ts).
 */
export async function handleJetstreamSubscribe(
  request: Request,
  env: Env,
  config: Config = readConfig(env),
): Promise<Response> {
  const url = new URL(request.url);
  const parsed = parseSubscribeParams(url.searchParams);
  if (!parsed.ok) return invalidRequest(parsed.message);
  const region = regionOf(request, url, config.fanoutRegions);
  if (!region.ok) return invalidRequest(region.message);
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return xrpcError(
      426,
      "InvalidRequest",
      "subscribe is a WebSocket endpoint: send Upgrade: websocket",
    );
  }
  const name = fanoutName(region.region, Math.floor(Math.random() * config.fanoutShards));
  const headers = new Headers(request.headers);
  headers.set(FANOUT_NAME_HEADER, name);
  headers.set(JETSTREAM_HEADER, "1");
  return fanoutStub(env, name).fetch(new Request(request.url, { headers }));
}
