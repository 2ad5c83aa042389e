import { describe, expect, it } from "vitest";
import { didDocumentUrl } from "../../src/identity/resolver";

// did:web documents are fetched from the host the DID names, so that host passes the same
// policy as a requestCrawl hostname (ingest/hostname.ts): no IP literals, no loopback, private
// or reserved names, no ports, no paths or escapes (issue 10, item 12).

const PROD = { plcUrl: "https://plc.example.com", devMode: false };
const DEV = { plcUrl: "http://localhost:2582", devMode: true };

describe("did:web resolution follows the hostname policy", () => {
  it("fetches a public host's well-known document over https", () => {
    expect(didDocumentUrl("did:web:pds.example.com", PROD)).toBe(
      "https://pds.example.com/.well-known/did.json",
    );
  });

  it.each([
    "did:web:127.1",
    "did:web:10.0.0.1",
    "did:web:169.254.169.254",
    "did:web:2130706433",
    "did:web:0x7f.1",
    "did:web:localhost",
    "did:web:localhost%3A2583",
    "did:web:127.0.0.1%3A2583",
    "did:web:printer.local",
    "did:web:metadata.internal",
    "did:web:example.com%3A8443",
    "did:web:evil.example.com%2F..%2Fadmin",
    "did:web:evil.example.com%2Fx",
    "did:web:example.com%40127.0.0.1",
    "did:web:example.com:user:alice",
    "did:web:%5B%3A%3A1%5D",
  ])("refuses %s", (did) => {
    expect(() => didDocumentUrl(did, PROD)).toThrow(/did:web/);
  });

  it("allows loopback with a port in DEV_MODE only, over http", () => {
    expect(didDocumentUrl("did:web:localhost%3A2583", DEV)).toBe(
      "http://localhost:2583/.well-known/did.json",
    );
    expect(() => didDocumentUrl("did:web:127.1%3A2583", DEV)).toThrow(/did:web/);
    expect(() => didDocumentUrl("did:web:10.0.0.1", DEV)).toThrow(/did:web/);
    expect(() => didDocumentUrl("did:web:localhost", DEV)).toThrow(/did:web/);
  });
});
