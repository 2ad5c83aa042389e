import type { Config } from "../config";
import type { Env } from "../env";
import { checkHostname, hostBaseUrl } from "../ingest/hostname";
import { opsLog } from "../ops-log";
import { hostDirectoryStub } from "../stubs";
import { carriesAdminToken } from "./admin";
import { CRAWL_ACCEPTED, rememberRefusal } from "./crawl-answers";
import { isRelayServerHeader, json, XrpcError } from "./errors";
import { startIngesting } from "./ingesters";
import { readJsonObject, requireMethod, stringField, type XrpcHandler } from "./params";

// com.atproto.sync.requestCrawl. Anyone may call it, so before the relay opens a socket to a
// host: the name must pass the SSRF policy (ingest/hostname.ts), the host must not be banned, it
// must answer describeServer like a PDS (in workerd there is no DNS lookup: a name that resolves
// to nothing fails here), it must not be a relay (loop guard), and new hosts are limited per day
// (NEW_HOSTS_PER_DAY). Before all that, one client IP may call it REQUEST_CRAWL_PER_IP_PER_MINUTE
// times a minute. Then the host's HostIngester starts or resumes it. Calling it again is harmless.
// A request with the admin bearer token (the operator's own import) skips both limits.

/** Who is calling, for the per-IP limit: Cloudflare's client IP, absent only in local runs. */
export function crawlCaller(request: Request): string {
  return request.headers.get("CF-Connecting-IP") ?? "local";
}
/** Long enough for a distant PDS, short enough that a dead name does not hold the caller. */
export const DESCRIBE_SERVER_TIMEOUT_MS = 5_000;

function unreachable(hostname: string, why: string): XrpcError {
  return new XrpcError(
    400,
    "HostNotReachable",
    `${hostname} did not answer com.atproto.server.describeServer: ${why}`,
  );
}

/** Checks that a host answers describeServer as a PDS, and is not a relay. */
export async function probeDescribeServer(hostname: string): Promise<void> {
  const url = `${hostBaseUrl(hostname, "http")}/xrpc/com.atproto.server.describeServer`;
  let res: Response;
  try {
    res = await fetch(url, {
      signal: AbortSignal.timeout(DESCRIBE_SERVER_TIMEOUT_MS),
      headers: { Accept: "application/json", "User-Agent": "freehose (atproto relay)" },
      redirect: "manual",
    });
  } catch (err) {
    const timedOut = err instanceof Error && err.name === "TimeoutError";
    throw unreachable(
      hostname,
      timedOut
        ? `no answer within ${DESCRIBE_SERVER_TIMEOUT_MS} ms`
        : `the name does not resolve or the host refused the connection (${String(err)})`,
    );
  }
  if (isRelayServerHeader(res.headers.get("Server"))) {
    await res.body?.cancel();
    throw new XrpcError(
      400,
      "InvalidRequest",
      `${hostname} is a relay (Server: ${res.headers.get("Server")}); relays do not crawl relays`,
    );
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw unreachable(hostname, `HTTP ${res.status}`);
  }
  let description: unknown;
  try {
    description = await res.json();
  } catch {
    throw unreachable(hostname, "the answer is not JSON");
  }
  const did = (description as { did?: unknown } | null)?.did;
  if (typeof did !== "string" || !did.startsWith("did:"))
    throw unreachable(hostname, "the answer has no service DID; is this a PDS?");
}

/** A caller over its per-minute limit; `firstRefusal` is the one of its window that gets logged. */
class RateLimitRefusal extends XrpcError {
  constructor(
    message: string,
    retryAfterSeconds: number,
    readonly firstRefusal: boolean,
  ) {
    super(429, "RateLimitExceeded", message, { "Retry-After": String(retryAfterSeconds) });
  }
}

export const handleRequestCrawl: XrpcHandler = async (request, env, config) => {
  const admin = carriesAdminToken(request, config);
  const caller = crawlCaller(request);
  let hostname: string | null = null;
  try {
    hostname = await requestedHostname(request, config);
    return await crawlHost(hostname, env, config, admin, caller);
  } catch (err) {
    // a flood from one caller is logged once per minute (the first refusal of its window)
    const quiet = err instanceof RateLimitRefusal && !err.firstRefusal;
    if (err instanceof XrpcError && err.status < 500 && !quiet)
      opsLog("crawl_refused", {
        hostname,
        error: err.error,
        message: err.message,
        caller,
        admin,
      });
    // kept for the host's page (a name that fails the hostname policy is no host: not kept)
    if (hostname !== null) await rememberRefusal(env, hostname, err);
    throw err;
  }
};

/** The body's hostname, normalised and checked against the SSRF policy (ingest/hostname.ts). */
async function requestedHostname(request: Request, config: Config): Promise<string> {
  requireMethod(request, "POST");
  const raw = stringField(await readJsonObject(request), "hostname");
  const checked = checkHostname(raw, config.devMode);
  if (!checked.ok)
    throw new XrpcError(
      400,
      "InvalidRequest",
      `hostname ${JSON.stringify(raw)}: ${checked.message}`,
    );
  return checked.hostname;
}

async function crawlHost(
  hostname: string,
  env: Env,
  config: Config,
  admin: boolean,
  caller: string,
): Promise<Response> {
  const directory = hostDirectoryStub(env);
  const admission = await directory.admitCrawl(
    hostname,
    admin ? null : caller,
    config.requestCrawlPerIpPerMinute,
  );
  switch (admission.kind) {
    case "allowed":
      break;
    case "banned":
      throw new XrpcError(400, "HostBanned", `${hostname} is banned from this relay`);
    case "rateLimited":
      throw new RateLimitRefusal(
        `at most ${config.requestCrawlPerIpPerMinute} requestCrawl calls a minute from one client; retry in ${admission.retryAfterSeconds} s`,
        admission.retryAfterSeconds,
        admission.firstRefusal,
      );
    default: {
      const never: never = admission;
      throw new Error(`unexpected crawl admission ${JSON.stringify(never)}`);
    }
  }
  await probeDescribeServer(hostname);
  const outcome = await directory.registerHost(hostname, admin ? null : config.newHostsPerDay);
  switch (outcome.kind) {
    case "banned":
      throw new XrpcError(400, "HostBanned", `${hostname} is banned from this relay`);
    case "tooManyNewHosts":
      throw new XrpcError(
        429,
        "RateLimitExceeded",
        `this relay admits at most ${outcome.maxNewHostsPerDay} new hosts a day; try tomorrow`,
      );
    case "registered": {
      const report = await startIngesting(env, config, outcome.entry, {
        crawlAnswer: { atMs: Date.now(), ...CRAWL_ACCEPTED },
      });
      opsLog("crawl_requested", {
        hostname,
        created: outcome.created,
        status: report.status,
        admin,
      });
      return json({});
    }
    default: {
      const never: never = outcome;
      throw new Error(`unexpected registration outcome ${JSON.stringify(never)}`);
    }
  }
}
