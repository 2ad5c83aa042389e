// Which hostnames the relay will crawl. requestCrawl is open to anyone, so outside DEV_MODE it
// must never make the relay connect to itself, to loopback, to private or link-local networks
// (cloud metadata lives at 169.254.169.254) or to raw IP addresses: only public DNS names, on
// the default port. DEV_MODE allows loopback with an explicit port (`localhost:2583`,
// `127.0.0.1:2583`), which is how local PDS hosts are named in tests (DESIGN.md, operator
// contract).
//
// What this cannot check: that a public name does not resolve to a private address (workerd
// offers no DNS lookup). Cloudflare's outbound fetch does not reach private networks of the
// account, and the describeServer probe in requestCrawl is what refuses names that resolve to
// nothing.

export type HostnameRefusal =
  | "Malformed"
  | "IpLiteral"
  | "Loopback"
  | "ReservedDomain"
  | "PortNotAllowed";

export type HostnameCheck =
  | { ok: true; hostname: string; loopback: boolean }
  | { ok: false; reason: HostnameRefusal; message: string };

/** RFC 1035 limits: a name of at most 253 characters, labels of 1-63 letters, digits, hyphens. */
const MAX_HOSTNAME_CHARS = 253;
const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const PORT_RE = /^[0-9]{1,5}$/;
const MAX_PORT = 65_535;

/** Loopback names that DEV_MODE accepts (with a port); every other loopback form is refused. */
const DEV_LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1"]);

/**
 * Special-use and private DNS names (RFC 6761, RFC 6762 .local, RFC 8375 .home.arpa, .internal
 * reserved by ICANN in 2024) plus common intranet suffixes: none of them names a public PDS.
 */
const RESERVED_SUFFIXES = [
  "localhost",
  "local",
  "localdomain",
  "internal",
  "intranet",
  "lan",
  "home",
  "corp",
  "arpa",
  "onion",
  "test",
  "invalid",
  "example",
];

function refuse(reason: HostnameRefusal, message: string): HostnameCheck {
  return { ok: false, reason, message };
}

/**
 * True when a name is an IP literal in any form a resolver or URL parser accepts: dotted or
 * single-number IPv4 (`2130706433`), hex or octal parts (`0x7f.1`), or IPv6 (anything with ':').
 * A real top-level domain never starts with a digit, so a numeric last label means an address.
 */
function isIpLiteral(host: string): boolean {
  if (host.includes(":")) return true;
  const last = host.split(".").at(-1) ?? "";
  return /^[0-9]/.test(last) || /^0x[0-9a-f]*$/.test(last);
}

/**
 * Normalises (trimmed, lowercase, no scheme, no trailing slash or dot) and checks a hostname
 * given to requestCrawl. The normalised form is the host's identity everywhere in the relay.
 */
export function checkHostname(input: string, devMode: boolean): HostnameCheck {
  let text = input.trim().toLowerCase();
  text = text.replace(/^(https?|wss?):\/\//, "").replace(/\/$/, "");
  if (text.length === 0) return refuse("Malformed", "hostname is empty");
  if (text.length > MAX_HOSTNAME_CHARS + 6)
    return refuse("Malformed", `hostname is longer than ${MAX_HOSTNAME_CHARS} characters`);
  if (/[/?#@\s\\%]/.test(text))
    return refuse("Malformed", "hostname must be a bare host name: no path, query or user");

  if (text.startsWith("[")) return refuse("IpLiteral", "IP address hostnames are not allowed");
  let host = text;
  let port: string | null = null;
  const colon = text.lastIndexOf(":");
  if (colon !== -1 && text.indexOf(":") === colon) {
    host = text.slice(0, colon);
    port = text.slice(colon + 1);
    const n = Number(port);
    if (!PORT_RE.test(port) || n < 1 || n > MAX_PORT)
      return refuse("Malformed", "hostname has an invalid port");
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host.length === 0 || host.length > MAX_HOSTNAME_CHARS)
    return refuse("Malformed", "hostname is empty or too long");

  if (DEV_LOOPBACK_NAMES.has(host)) {
    if (devMode && port !== null)
      return { ok: true, hostname: `${host}:${Number(port)}`, loopback: true };
    return refuse(
      "Loopback",
      devMode
        ? "loopback hosts need an explicit port (e.g. localhost:2583)"
        : "loopback hosts are not allowed",
    );
  }
  if (isIpLiteral(host)) return refuse("IpLiteral", "IP address hostnames are not allowed");

  const labels = host.split(".");
  if (!labels.every((label) => LABEL_RE.test(label)))
    return refuse("Malformed", "hostname has an invalid label");
  if (labels.length < 2)
    return refuse("Malformed", "hostname must be a fully qualified domain name");
  const tld = labels.at(-1) ?? "";
  if (RESERVED_SUFFIXES.includes(tld))
    return refuse("ReservedDomain", `.${tld} names are private or reserved`);
  if (port !== null)
    return refuse(
      "PortNotAllowed",
      "hostnames with a port are only allowed for loopback in DEV_MODE",
    );
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

/**
 * The directory key for a hostname given to a lookup or an admin action: the checked form when
 * it passes the policy, else the same normalisation (an admin may ban a name crawls would refuse).
 */
export function normaliseHostname(input: string, devMode: boolean): string {
  const checked = checkHostname(input, devMode);
  if (checked.ok) return checked.hostname;
  return input
    .trim()
    .toLowerCase()
    .replace(/^(https?|wss?):\/\//, "")
    .replace(/\/$/, "")
    .replace(/\.$/, "");
}
