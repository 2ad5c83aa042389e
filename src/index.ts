import type { Env } from "./env";
import { route } from "./xrpc/router";

// The Worker: every request goes through the router (src/xrpc/router.ts); the Durable Object
// classes are exported here so wrangler can bind them.

export { Fanout } from "./fanout/fanout";
export { HostDirectory } from "./ingest/host-directory";
export { HostIngester } from "./ingest/host-ingester";
export { RepoIndex } from "./ingest/repo-index";
export { Sequencer } from "./sequence/sequencer";

export default {
  fetch(request: Request, env: Env): Promise<Response> {
    return route(request, env);
  },
} satisfies ExportedHandler<Env>;
