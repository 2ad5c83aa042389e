import { describe, expect, it } from "vitest";
import { checkHostname, hostBaseUrl } from "../../src/ingest/hostname";

function refusal(hostname: string, devMode: boolean): string | null {
  const checked = checkHostname(hostname, devMode);
  return checked.ok ? null : checked.reason;
}

describe("requestCrawl hostname policy outside DEV_MODE", () => {
  it.each([
    ["10.0.0.1", "IpLiteral"],
    ["169.254.169.254", "IpLiteral"],
    ["192.168.1.10", "IpLiteral"],
    ["0.0.0.0", "IpLiteral"],
    ["127.1", "IpLiteral"],
    ["2130706433.", "IpLiteral"],
    ["0x7f000001.0x1", "IpLiteral"],
    ["[::1]", "IpLiteral"],
    ["[::1]:2583", "IpLiteral"],
    ["::1", "IpLiteral"],
    ["[fe80::1]", "IpLiteral"],
    ["fd00::1", "IpLiteral"],
    ["https://10.0.0.1/", "IpLiteral"],
    ["localhost", "Loopback"],
    ["LOCALHOST.", "Loopback"],
    ["127.0.0.1", "Loopback"],
    ["localhost:2583", "Loopback"],
    ["127.0.0.1:2583", "Loopback"],
    ["pds.localhost", "ReservedDomain"],
    ["printer.local", "ReservedDomain"],
    ["metadata.google.internal", "ReservedDomain"],
    ["router.home.arpa", "ReservedDomain"],
    ["pds.example.com:8443", "PortNotAllowed"],
    ["singlelabel", "Malformed"],
    ["pds.example.com/path", "Malformed"],
    ["user@pds.example.com", "Malformed"],
    ["pds.example.com?x=1", "Malformed"],
    ["", "Malformed"],
    ["   ", "Malformed"],
    ["-bad-.example.com", "Malformed"],
    ["under_score.example.com", "Malformed"],
    ["a..b.com", "Malformed"],
    [`${"a".repeat(64)}.example.com`, "Malformed"],
    [`${"abcdefghi.".repeat(26)}com`, "Malformed"],
    ["pds.example.com:99999", "Malformed"],
  ])("refuses %s (%s)", (hostname, reason) => {
    expect(refusal(hostname, false)).toBe(reason);
  });

  it.each([
    ["pds.example.com", "pds.example.com"],
    ["PDS.Example.COM.", "pds.example.com"],
    ["https://pds.example.com/", "pds.example.com"],
    ["  bsky.network ", "bsky.network"],
    ["morel.us-east.host.bsky.network", "morel.us-east.host.bsky.network"],
    ["xn--bcher-kva.de", "xn--bcher-kva.de"],
  ])("normalises %s to %s", (hostname, expected) => {
    const checked = checkHostname(hostname, false);
    expect(checked).toEqual({ ok: true, hostname: expected, loopback: false });
  });
});

describe("requestCrawl hostname policy in DEV_MODE", () => {
  it("allows loopback with a port, reached over plain http and ws", () => {
    expect(checkHostname("localhost:2583", true)).toEqual({
      ok: true,
      hostname: "localhost:2583",
      loopback: true,
    });
    expect(checkHostname("LocalHost.:2583", true)).toEqual({
      ok: true,
      hostname: "localhost:2583",
      loopback: true,
    });
    expect(checkHostname("127.0.0.1:2583", true)).toMatchObject({ hostname: "127.0.0.1:2583" });
    expect(hostBaseUrl("localhost:2583", "http")).toBe("http://localhost:2583");
    expect(hostBaseUrl("localhost:2583", "ws")).toBe("ws://localhost:2583");
    expect(hostBaseUrl("pds.example.com", "http")).toBe("https://pds.example.com");
    expect(hostBaseUrl("pds.example.com", "ws")).toBe("wss://pds.example.com");
  });

  it.each([
    ["localhost", "Loopback"],
    ["127.0.0.1", "Loopback"],
    ["localhost:0", "Malformed"],
    ["10.0.0.1", "IpLiteral"],
    ["10.0.0.1:2583", "IpLiteral"],
    ["169.254.169.254", "IpLiteral"],
    ["[::1]:2583", "IpLiteral"],
    ["pds.example.com:8443", "PortNotAllowed"],
  ])("still refuses %s (%s)", (hostname, reason) => {
    expect(refusal(hostname, true)).toBe(reason);
  });
});
