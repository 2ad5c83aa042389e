// Which hostnames the relay will crawl. requestCrawl is open to anyone, so outside DEV_MODE it
// must never make the relay connect to itself, to loopback, to private or link-local networks
// (cloud metadata lives at 169.254.169.254) or to raw IP addresses. DEV_MODE allows loopback
// with an explicit port, which is how local PDS hosts are named in tests.

export type HostnameCheck =
  | { ok: true; hostname: string; loopback: boolean }
  | { ok: false; message: string };

const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;
const BLOCKED_SUFFIXES = [
  ".local",
  ".localhost",
  ".internal",
  ".lan",
  ".home.arpa",
  ".onion",
  ".test",
  ".invalid",
  ".example",
];
const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1"]);

/** Normalises (lowercase, no scheme, no trailing dot) and checks a requestCrawl hostname. */
export function checkHostname(input: string, devMode: boolean): HostnameCheck {
  let text = input.trim().toLowerCase();
  if (
    text.startsWith("https://") ||
    text.startsWith("http://") ||
    text.startsWith("wss://") ||
    text.startsWith("ws://")
  ) {
    text = text.replace(/^[a-z]+:\/\//, "");
  }
  text = text.replace(/\/+$/, "");
  if (text.length === 0 || text.length > 253)
    return { ok: false, message: "hostname is empty or too long" };
  if (/[/?#@\s]/.test(text))
    return { ok: false, message: "hostname must be a bare host name, without path, user or query" };

  let host = text;
  let port: string | null = null;
  const portMatch = /^(.*):(\d{1,5})$/.exec(text);
  if (portMatch && !text.startsWith("[")) {
    host = portMatch[1] as string;
    port = portMatch[2] as string;
  }
  host = host.replace(/\.$/, "");

  if (host.startsWith("[") || host.includes(":")) {
    return { ok: false, message: "IP address hostnames are not allowed" };
  }
  if (LOOPBACK_NAMES.has(host)) {
    if (devMode && port) return { ok: true, hostname: `${host}:${port}`, loopback: true };
    return { ok: false, message: "loopback hosts are not allowed" };
  }
  if (IPV4_RE.test(host)) return { ok: false, message: "IP address hostnames are not allowed" };
  if (port)
    return {
      ok: false,
      message: "hostnames with a port are only allowed for loopback in DEV_MODE",
    };
  const labels = host.split(".");
  if (labels.length < 2)
    return { ok: false, message: "hostname must be a fully qualified domain name" };
  if (!labels.every((l) => LABEL_RE.test(l)))
    return { ok: false, message: "hostname has an invalid label" };
  if (/^\d+$/.test(labels[labels.length - 1] as string))
    return { ok: false, message: "top-level domain cannot be numeric" };
  if (BLOCKED_SUFFIXES.some((s) => `.${host}`.endsWith(s))) {
    return { ok: false, message: "hostname is in a private or reserved domain" };
  }
  return { ok: true, hostname: host, loopback: false };
}

/** True for hosts reached over plain ws:// and http:// (loopback, DEV_MODE only). */
export function isLoopbackHostname(hostname: string): boolean {
  return hostname.startsWith("localhost:") || hostname.startsWith("127.0.0.1:");
}

export function hostBaseUrl(hostname: string, kind: "http" | "ws"): string {
  const secure = !isLoopbackHostname(hostname);
  if (kind === "http") return `${secure ? "https" : "http"}://${hostname}`;
  return `${secure ? "wss" : "ws"}://${hostname}`;
}
