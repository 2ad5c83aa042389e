import type { Env } from "./env";

export { Fanout } from "./fanout/fanout";
export { HostDirectory } from "./ingest/host-directory";
export { HostIngester } from "./ingest/host-ingester";
export { RepoIndex } from "./ingest/repo-index";
export { Sequencer } from "./sequence/sequencer";

export default {
  async fetch(request: Request, _env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/xrpc/_health") {
      return Response.json({ status: "ok" }, { headers: { Server: "freehose atproto-relay" } });
    }
    return Response.json({ error: "MethodNotImplemented", message: "not found" }, { status: 404 });
  },
} satisfies ExportedHandler<Env>;
