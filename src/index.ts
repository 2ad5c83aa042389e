import type { Env } from "./env";
import { meterEnvBucket } from "./metering/meter";
import { installRelaySha256 } from "./relay-sha256";
import { route } from "./xrpc/router";

// The Worker: every request goes through the router (src/xrpc/router.ts); the Durable Object
// classes are exported here so wrangler can bind them.

// native SHA-256 for large inputs, for every object in this isolate (relay-sha256.ts)
installRelaySha256();

export { Fanout } from "./fanout/fanout";
export { HostDirectory } from "./ingest/host-directory";
export { HostIngester } from "./ingest/host-ingester";
export { RepoIndex } from "./ingest/repo-index";
export { Sequencer } from "./sequence/sequencer";

export default {
  fetch(request: Request, env: Env, ctx?: ExecutionContext): Promise<Response> {
    // the Worker reads R2 itself for segment downloads: counted like the objects' reads
    meterEnvBucket(env);
    return route(request, env, undefined, ctx);
  },
} satisfies ExportedHandler<Env>;
