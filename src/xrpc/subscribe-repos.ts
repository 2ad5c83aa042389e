import { type Config, readConfig } from "../config";
import type { Env } from "../env";
import { CURSOR_HEADER, FANOUT_NAME_HEADER } from "../fanout/fanout";
import {
  chooseRegion,
  fanoutName,
  isRegion,
  type Region,
  type RequestGeo,
} from "../fanout/regions";
import { parseCursorParam } from "../protocol/cursor";
import { fanoutStub } from "../stubs";
import { invalidRequest, xrpcError } from "./errors";

/**
 * `com.atproto.sync.subscribeRepos`: checks the cursor before the upgrade (a bad one is a plain
 * XRPC 400), then hands the socket to one Fanout shard of the consumer's region (the enabled
 * region nearest to `request.cf`, or `?region=`; fanout/regions.ts). Shards are picked at
 * random: consumers are independent, so an even spread is all that matters.
 */
export async function handleSubscribeRepos(
  request: Request,
  env: Env,
  config: Config = readConfig(env),
): Promise<Response> {
  const url = new URL(request.url);
  const cursor = parseCursorParam(url.searchParams.get("cursor"));
  if (!cursor.ok) return invalidRequest(cursor.message);
  return handToFanout(request, env, config, url, "subscribeRepos", {
    [CURSOR_HEADER]: cursor.cursor === null ? "" : String(cursor.cursor),
  });
}

/**
 * What every WebSocket endpoint served by the Fanouts does once its own parameters are checked:
 * the region (a bad `?region=` is a 400), the upgrade (426 without one), then the socket goes to
 * a random shard of that region with `headers` telling the Fanout what kind of consumer it is.
 */
export function handToFanout(
  request: Request,
  env: Env,
  config: Config,
  url: URL,
  endpoint: string,
  headers: Record<string, string>,
): Promise<Response> | Response {
  const region = regionOf(request, url, config.fanoutRegions);
  if (!region.ok) return invalidRequest(region.message);
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return xrpcError(
      426,
      "InvalidRequest",
      `${endpoint} is a WebSocket endpoint: send Upgrade: websocket`,
    );
  }
  const name = fanoutName(region.region, Math.floor(Math.random() * config.fanoutShards));
  const forwarded = new Headers(request.headers);
  forwarded.set(FANOUT_NAME_HEADER, name);
  for (const [key, value] of Object.entries(headers)) forwarded.set(key, value);
  return fanoutStub(env, name).fetch(new Request(request.url, { headers: forwarded }));
}

/** `?region=` if given (it must be an enabled region), else the one nearest to the request. */
function regionOf(
  request: Request,
  url: URL,
  enabled: readonly Region[],
): { ok: true; region: Region | null } | { ok: false; message: string } {
  const asked = url.searchParams.get("region");
  if (asked === null)
    return { ok: true, region: chooseRegion(request.cf as RequestGeo | undefined, enabled) };
  if (isRegion(asked) && enabled.includes(asked)) return { ok: true, region: asked };
  const known = enabled.length === 0 ? "none: regional fan-out is off" : enabled.join(", ");
  return { ok: false, message: `region must be an enabled region (${known}); got ${asked}` };
}
