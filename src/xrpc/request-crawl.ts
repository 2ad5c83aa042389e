import { type Config, readConfig } from "../config";
import type { Env } from "../env";
import type { HostEntry } from "../ingest/host-directory";
import type { HostLimits } from "../ingest/host-record";
import { checkHostname, hostBaseUrl } from "../ingest/hostname";
import { ingesterObjectName } from "../ingest/partition";
import { RELAY_SERVER_MARKER } from "../ingest/upstream";
import { hostDirectoryStub, hostIngesterStub } from "../stubs";
import { json, XrpcError } from "./errors";
import { requireMethod } from "./params";

// com.atproto.sync.requestCrawl: anyone may ask, so the hostname is checked (no loopback,
// private or IP targets outside DEV_MODE), the host must answer describeServer like a PDS and
// must not be a relay (loop guard), new hosts are limited per day, and banned hosts are refused.
// Then the host's HostIngester starts or resumes it. Calling it again is harmless.

/** The reference relay admits at most 50 new hosts a day by default. */
const NEW_HOSTS_PER_DAY = 50;
const DESCRIBE_TIMEOUT_MS = 5_000;

export function defaultLimits(config: Config): HostLimits {
  return { eventsPerSecond: config.newHostEventsPerSecond, maxAccounts: config.newHostMaxAccounts };
}

async function checkDescribeServer(hostname: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`${hostBaseUrl(hostname, "http")}/xrpc/com.atproto.server.describeServer`, {
      signal: AbortSignal.timeout(DESCRIBE_TIMEOUT_MS),
      headers: { Accept: "application/json" },
    });
  } catch (err) {
    throw new XrpcError(400, "HostNotReachable", `could not reach ${hostname}: ${String(err)}`);
  }
  await res.body?.cancel();
  if (res.headers.get("Server")?.toLowerCase().includes(RELAY_SERVER_MARKER)) {
    throw new XrpcError(
      400,
      "InvalidRequest",
      `${hostname} is a relay; relays do not crawl relays`,
    );
  }
  if (!res.ok) {
    throw new XrpcError(
      400,
      "HostNotReachable",
      `${hostname} did not answer describeServer (HTTP ${res.status})`,
    );
  }
}

/** Starts or resumes the ingester of a registered host. Shared by requestCrawl and the admin. */
export async function startIngesting(env: Env, entry: HostEntry, cursorHint?: number | null) {
  const config = readConfig(env);
  const objectName = ingesterObjectName(entry.hostname, entry.pinned, config.ingestShards);
  return hostIngesterStub(env, objectName).crawl(objectName, entry.hostname, {
    pinned: entry.pinned,
    limits: entry.limits ?? defaultLimits(config),
    ...(cursorHint !== undefined ? { cursor: cursorHint } : {}),
  });
}

export async function handleRequestCrawl(request: Request, env: Env): Promise<Response> {
  requireMethod(request, "POST");
  const config = readConfig(env);
  let input: unknown;
  try {
    input = await request.json();
  } catch {
    throw new XrpcError(400, "InvalidRequest", 'body must be JSON: {"hostname": "..."}');
  }
  const raw = (input as { hostname?: unknown } | null)?.hostname;
  if (typeof raw !== "string") throw new XrpcError(400, "InvalidRequest", "hostname is required");
  const checked = checkHostname(raw, config.devMode);
  if (!checked.ok) throw new XrpcError(400, "InvalidRequest", checked.message);
  const hostname = checked.hostname;

  const directory = hostDirectoryStub(env);
  const known = await directory.getHost(hostname);
  if (known?.banned)
    throw new XrpcError(400, "HostBanned", `${hostname} is banned from this relay`);
  await checkDescribeServer(hostname);
  const { entry, created, hostsCreatedLastDay } = await directory.registerHost(hostname);
  if (created && hostsCreatedLastDay > NEW_HOSTS_PER_DAY) {
    await directory.forgetHost(hostname);
    throw new XrpcError(
      429,
      "RateLimitExceeded",
      `this relay admits at most ${NEW_HOSTS_PER_DAY} new hosts a day`,
    );
  }
  const report = await startIngesting(env, entry);
  console.log(JSON.stringify({ msg: "requestCrawl", hostname, created, status: report.status }));
  return json({});
}
