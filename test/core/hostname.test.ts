import { describe, expect, it } from "vitest";
import { checkHostname } from "../../src/ingest/hostname";

describe("requestCrawl hostname policy", () => {
  it.each([
    "10.0.0.1",
    "169.254.169.254",
    "127.0.0.1",
    "localhost",
    "[::1]",
    "::1",
    "192.168.1.10",
    "localhost:2583",
    "127.0.0.1:2583",
    "printer.local",
    "metadata.google.internal",
    "pds.example.com:8443",
    "singlelabel",
    "pds.example.com/path",
    "user@pds.example.com",
    "",
    "-bad-.example.com",
  ])("refuses %s outside DEV_MODE", (hostname) => {
    expect(checkHostname(hostname, false).ok).toBe(false);
  });

  it.each(["pds.example.com", "PDS.Example.COM.", "https://pds.example.com/", "bsky.network"])(
    "accepts %s",
    (hostname) => {
      const checked = checkHostname(hostname, false);
      expect(checked.ok).toBe(true);
      if (checked.ok) expect(checked.hostname).toBe(checked.hostname.toLowerCase());
    },
  );

  it("DEV_MODE allows loopback with a port, and only that", () => {
    expect(checkHostname("localhost:2583", true)).toEqual({
      ok: true,
      hostname: "localhost:2583",
      loopback: true,
    });
    expect(checkHostname("127.0.0.1:2583", true)).toEqual({
      ok: true,
      hostname: "127.0.0.1:2583",
      loopback: true,
    });
    expect(checkHostname("localhost", true).ok).toBe(false);
    expect(checkHostname("10.0.0.1", true).ok).toBe(false);
    expect(checkHostname("169.254.169.254", true).ok).toBe(false);
    expect(checkHostname("[::1]:2583", true).ok).toBe(false);
  });
});
