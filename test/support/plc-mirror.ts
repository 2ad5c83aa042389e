import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

// A second PLC directory for the tests of several PLC sources (test/workers-plc): a mirror that
// serves the same documents as the scripted PLC (it shares its map, so it never lags) and can be
// taken down, in which case every document request has its connection cut before any answer —
// to the relay, the network error of a directory that is unreachable.
//
// Control (answered even while down, so tests inside workerd can drive it over loopback):
//   POST /_down?on=1|0   -> { down }       cut document requests, or serve them again
//   GET  /_stats?did=D   -> { requests }  document requests for D that reached the mirror
export class PlcMirror {
  readonly requestsByDid = new Map<string, number>();
  down = false;
  server!: Server;
  url = "";

  constructor(private readonly docs: Map<string, unknown>) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (url.pathname === "/_down") {
        this.down = url.searchParams.get("on") === "1";
        return reply(200, { down: this.down });
      }
      if (url.pathname === "/_stats") {
        const did = url.searchParams.get("did") ?? "";
        return reply(200, { requests: this.requestsByDid.get(did) ?? 0 });
      }
      const did = decodeURIComponent(url.pathname.slice(1));
      this.requestsByDid.set(did, (this.requestsByDid.get(did) ?? 0) + 1);
      if (this.down) {
        req.socket.destroy();
        return;
      }
      const doc = this.docs.get(did);
      reply(doc ? 200 : 404, doc ?? { message: "DID not registered" });
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://localhost:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
