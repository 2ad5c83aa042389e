import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

// A second PLC directory for the tests of several PLC sources (test/workers-plc): a mirror that
// serves the same documents as the scripted PLC (it shares its map, so it never lags) and can be
// taken down: its port is then closed, so the relay's requests are refused as an unreachable
// directory's are, and opened again on the same port to bring it back.
//
// Control, on a port of its own (tests inside workerd drive it over loopback):
//   POST /down?on=1|0   -> { down }       close the mirror's port, or listen on it again
//   GET  /stats?did=D   -> { requests }  document requests for D the mirror answered
export class PlcMirror {
  readonly requestsByDid = new Map<string, number>();
  readonly #mirror: Server;
  readonly #control: Server;
  #port = 0;
  #down = false;
  url = "";
  controlUrl = "";

  constructor(private readonly docs: Map<string, unknown>) {
    this.#mirror = createServer((req, res) => {
      const did = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname.slice(1));
      this.requestsByDid.set(did, (this.requestsByDid.get(did) ?? 0) + 1);
      const doc = this.docs.get(did);
      res.writeHead(doc ? 200 : 404, { "Content-Type": "application/json" });
      res.end(JSON.stringify(doc ?? { message: "DID not registered" }));
    });
    this.#control = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? "/", "http://x");
        let body: unknown;
        if (url.pathname === "/down") {
          await this.#setDown(url.searchParams.get("on") === "1");
          body = { down: this.#down };
        } else if (url.pathname === "/stats") {
          body = { requests: this.requestsByDid.get(url.searchParams.get("did") ?? "") ?? 0 };
        }
        res.writeHead(body ? 200 : 404, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body ?? { error: "unknown control call" }));
      })();
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.#mirror.listen(0, "127.0.0.1", r));
    this.#port = (this.#mirror.address() as AddressInfo).port;
    this.url = `http://localhost:${this.#port}`;
    await new Promise<void>((r) => this.#control.listen(0, "127.0.0.1", r));
    this.controlUrl = `http://localhost:${(this.#control.address() as AddressInfo).port}`;
  }

  async #setDown(down: boolean): Promise<void> {
    if (down === this.#down) return;
    this.#down = down;
    if (down) {
      this.#mirror.closeAllConnections();
      await new Promise<void>((r) => this.#mirror.close(() => r()));
    } else {
      await new Promise<void>((r) => this.#mirror.listen(this.#port, "127.0.0.1", r));
    }
  }

  async close(): Promise<void> {
    this.#control.closeAllConnections();
    await new Promise<void>((r) => this.#control.close(() => r()));
    if (!this.#down) {
      this.#mirror.closeAllConnections();
      await new Promise<void>((r) => this.#mirror.close(() => r()));
    }
  }
}
