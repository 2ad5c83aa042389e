import { normaliseHostname } from "../ingest/hostname";
import { hostDirectoryStub } from "../stubs";
import { json, XrpcError } from "./errors";
import { requiredParam, requireMethod, type XrpcHandler } from "./params";
import { hostView } from "./views";

// com.atproto.sync.getHostStatus: status (active, idle, offline, throttled, banned), the last
// durable upstream seq and the account count. The hostname is normalised the way requestCrawl
// stored it, so `PDS.Example.com.` finds `pds.example.com`.

export const handleGetHostStatus: XrpcHandler = async (request, env, config) => {
  requireMethod(request, "GET");
  const raw = requiredParam(new URL(request.url), "hostname");
  const hostname = normaliseHostname(raw, config.devMode);
  const entry = await hostDirectoryStub(env).getHost(hostname);
  if (!entry) throw new XrpcError(404, "HostNotFound", `${hostname} is not known to this relay`);
  return json(hostView(entry));
};
