import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { validateXrpcOutput } from "../../src/protocol/lexicon";

// Loopback servers for the XRPC tests in workerd (started by the workers global setup):
// - a lexicon validator: @atproto/lexicon does not load inside the workerd test pool, so tests
//   POST {nsid, value} here and Node validates with src/protocol/lexicon.ts, the real thing;
// - a host that answers describeServer as a relay does (Server: ... atproto-relay), for the
//   loop guard;
// - a host that answers describeServer with a web page, i.e. not a PDS.

export type XrpcTestServers = {
  lexiconUrl: string;
  relayLikeHostname: string;
  notPdsHostname: string;
  close(): Promise<void>;
};

async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startXrpcTestServers(): Promise<XrpcTestServers> {
  const lexicon = await listen((req, res) => {
    void (async () => {
      const { nsid, value } = JSON.parse(await readBody(req)) as { nsid: string; value: unknown };
      let error: string | null = null;
      try {
        validateXrpcOutput(nsid, value);
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ ok: error === null, error }));
    })();
  });
  const relayLike = await listen((_req, res) => {
    res.writeHead(200, { "Content-Type": "application/json", Server: "indigo atproto-relay" });
    res.end(JSON.stringify({ did: "did:web:relay.test", availableUserDomains: [] }));
  });
  const notPds = await listen((_req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end("<html><body>a blog</body></html>");
  });
  const servers = [lexicon.server, relayLike.server, notPds.server];
  return {
    lexiconUrl: `http://127.0.0.1:${lexicon.port}`,
    relayLikeHostname: `localhost:${relayLike.port}`,
    notPdsHostname: `localhost:${notPds.port}`,
    async close() {
      await Promise.all(
        servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      );
    },
  };
}
