import type { Env } from "./env";
import { route } from "./xrpc/router";

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
