import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Secp256k1Keypair } from "@atproto/crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HealthChange } from "../../src/identity/plc-sources";
import { DidResolver, IdentityUnavailable } from "../../src/identity/resolver";
import { ProtocolError } from "../../src/protocol/errors";

// DidResolver over several PLC directories, against real HTTP servers on loopback: the
// directory, a mirror that lags (404 for everything), a broken one (an HTML page with 200), one
// that answers 503, and a closed port.

const KNOWN = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const UNKNOWN = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";

type Source = { url: string; requests: number; server: Server };
const sources: Source[] = [];

async function serve(answer: (did: string) => [number, string, string]): Promise<Source> {
  const source = { url: "", requests: 0 } as Source;
  source.server = createServer((req, res) => {
    source.requests++;
    const [status, type, body] = answer(decodeURIComponent((req.url ?? "/").slice(1)));
    res.writeHead(status, { "Content-Type": type });
    res.end(body);
  });
  await new Promise<void>((r) => source.server.listen(0, "127.0.0.1", r));
  source.url = `http://127.0.0.1:${(source.server.address() as AddressInfo).port}`;
  sources.push(source);
  return source;
}

let directory: Source;
let lagging: Source;
let broken: Source;
let failing: Source;
let closedPort: string;

beforeAll(async () => {
  const key = (await Secp256k1Keypair.create()).did();
  const doc = JSON.stringify({
    id: KNOWN,
    alsoKnownAs: ["at://alice.test"],
    verificationMethod: [
      {
        id: `${KNOWN}#atproto`,
        type: "Multikey",
        controller: KNOWN,
        publicKeyMultibase: key.slice("did:key:".length),
      },
    ],
    service: [
      {
        id: "#atproto_pds",
        type: "AtprotoPersonalDataServer",
        serviceEndpoint: "https://pds.test",
      },
    ],
  });
  const json = "application/json";
  directory = await serve((did) => (did === KNOWN ? [200, json, doc] : [404, json, "{}"]));
  lagging = await serve(() => [404, json, '{"message":"DID not registered"}']);
  broken = await serve(() => [200, "text/html", "<html>captive portal</html>"]);
  failing = await serve(() => [503, json, '{"message":"unavailable"}']);
  const closed = await serve(() => [200, json, "{}"]);
  closedPort = closed.url;
  await new Promise<void>((r) => closed.server.close(() => r()));
});

afterAll(async () => {
  for (const s of sources) if (s.server.listening) s.server.close();
});

function resolverOf(urls: string[]): { resolver: DidResolver; changes: HealthChange[] } {
  const changes: HealthChange[] = [];
  const resolver = new DidResolver({ plcUrls: urls, devMode: true, timeoutMs: 3_000 }, (c) =>
    changes.push(c),
  );
  return { resolver, changes };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected the look-up to fail");
}

describe("did:plc over several PLC directories", () => {
  it("a lagging mirror's 404 is not final: the next directory is asked, and both stay healthy", async () => {
    const { resolver, changes } = resolverOf([lagging.url, directory.url]);
    expect((await resolver.resolve(KNOWN)).pdsEndpoint).toBe("https://pds.test");
    expect(changes).toEqual([]);
    expect(resolver.plcSources.health().every((s) => s.failures === 0)).toBe(true);
  });

  it("a DID no directory has is not registered", async () => {
    const { resolver } = resolverOf([lagging.url, directory.url]);
    const err = await failure(resolver.resolve(UNKNOWN));
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).name).toBe("InvalidDidDocument");
  });

  it("a closed port is skipped, and skipped again while it backs off", async () => {
    const { resolver, changes } = resolverOf([closedPort, directory.url]);
    expect((await resolver.resolve(KNOWN)).did).toBe(KNOWN);
    expect(changes).toMatchObject([{ kind: "unhealthy", url: closedPort, failures: 1 }]);
    expect(resolver.plcSources.toAsk()).toEqual([directory.url]);
    expect((await resolver.resolve(KNOWN)).did).toBe(KNOWN);
    expect(changes.length).toBe(1);
  });

  it("a directory that answers with something that is not a document is broken, not a verdict", async () => {
    const { resolver, changes } = resolverOf([broken.url, directory.url]);
    expect((await resolver.resolve(KNOWN)).did).toBe(KNOWN);
    expect(changes).toMatchObject([{ kind: "unhealthy", url: broken.url }]);
  });

  it("with no directory answering the look-up is unavailable (retryable), never 'not registered'", async () => {
    const { resolver, changes } = resolverOf([closedPort, failing.url]);
    expect(await failure(resolver.resolve(KNOWN))).toBeInstanceOf(IdentityUnavailable);
    expect(changes.map((c) => c.kind)).toEqual(["unhealthy", "unhealthy"]);
  });

  it("one directory down and the other without the DID: not registered (the one that answered is believed)", async () => {
    const { resolver } = resolverOf([closedPort, lagging.url]);
    const err = await failure(resolver.resolve(KNOWN));
    expect((err as ProtocolError).name).toBe("InvalidDidDocument");
  });

  it("a single directory is asked even while it backs off: a look-up is never refused unasked", async () => {
    const { resolver } = resolverOf([failing.url]);
    const before = failing.requests;
    await failure(resolver.resolve(KNOWN));
    await failure(resolver.resolve(KNOWN));
    expect(failing.requests - before).toBe(2);
    expect(resolver.plcSources.health()[0]?.failures).toBe(2);
  });
});
