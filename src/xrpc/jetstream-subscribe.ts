import { type Config, readConfig } from "../config";
import type { Env } from "../env";
import { JETSTREAM_HEADER } from "../fanout/fanout";
import { parseSubscribeParams } from "../jetstream/options";
import { invalidRequest } from "./errors";
import { handToFanout } from "./subscribe-repos";

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
  return handToFanout(request, env, config, url, "subscribe", { [JETSTREAM_HEADER]: "1" });
}
