import { checkHostname, hostBaseUrl } from "../ingest/hostname";
import { hostDirectoryStub } from "../stubs";
import { isRelayServerHeader, json, XrpcError } from "./errors";
import { startIngesting } from "./ingesters";
import { readJsonObject, requireMethod, stringField, type XrpcHandler } from "./params";

// com.atproto.sync.requestCrawl. Anyone may call it, so before the relay opens a socket to a
// host: the name must pass the SSRF policy (ingest/hostname.ts), the host must not be banned, it
// must answer describeServer like a PDS (in workerd there is no DNS lookup: a name that resolves
// to nothing fails here), it must not be a relay (loop guard), and new hosts are limited per day.
// Then the host's HostIngester starts or resumes it. Calling it again is harmless.

/** The reference relay admits at most 50 new hosts a day by default (DESIGN.md). */
export const MAX_NEW_HOSTS_PER_DAY = 50;
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

export const handleRequestCrawl: XrpcHandler = async (request, env, config) => {
  requireMethod(request, "POST");
  const raw = stringField(await readJsonObject(request), "hostname");
  const checked = checkHostname(raw, config.devMode);
  if (!checked.ok)
    throw new XrpcError(
      400,
      "InvalidRequest",
      `hostname ${JSON.stringify(raw)}: ${checked.message}`,
    );
  const hostname = checked.hostname;

  const directory = hostDirectoryStub(env);
  const banned = (await directory.getHost(hostname))?.banned ?? false;
  if (banned) throw new XrpcError(400, "HostBanned", `${hostname} is banned from this relay`);
  await probeDescribeServer(hostname);
  const outcome = await directory.registerHost(hostname, MAX_NEW_HOSTS_PER_DAY);
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
      const report = await startIngesting(env, config, outcome.entry);
      console.log(
        JSON.stringify({
          msg: "requestCrawl",
          hostname,
          created: outcome.created,
          status: report.status,
        }),
      );
      return json({});
    }
    default: {
      const never: never = outcome;
      throw new Error(`unexpected registration outcome ${JSON.stringify(never)}`);
    }
  }
};
