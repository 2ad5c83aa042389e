import type { Env } from "../env";
import type { HostEntry } from "../ingest/host-directory";
import { hostDirectoryStub } from "../stubs";
import { json, XrpcError } from "./errors";
import { intParam, requiredParam, requireMethod } from "./params";

// com.atproto.sync.listHosts and getHostStatus, shaped exactly as their lexicons say. The
// fuller picture (last error, counters by drop reason) is on the admin host list.

function hostView(entry: HostEntry) {
  const view: { hostname: string; seq?: number; accountCount?: number; status: string } = {
    hostname: entry.hostname,
    status: entry.status,
  };
  if (entry.cursor !== null) view.seq = entry.cursor;
  view.accountCount = entry.accountCount;
  return view;
}

export async function handleListHosts(request: Request, env: Env): Promise<Response> {
  requireMethod(request, "GET");
  const url = new URL(request.url);
  const limit = intParam(url, "limit", 1, 1000, 200);
  const cursor = url.searchParams.get("cursor");
  const hosts = await hostDirectoryStub(env).listHosts(cursor, limit);
  const body: { hosts: ReturnType<typeof hostView>[]; cursor?: string } = {
    hosts: hosts.map(hostView),
  };
  if (hosts.length === limit) body.cursor = (hosts[hosts.length - 1] as HostEntry).hostname;
  return json(body);
}

export async function handleGetHostStatus(request: Request, env: Env): Promise<Response> {
  requireMethod(request, "GET");
  const url = new URL(request.url);
  const hostname = requiredParam(url, "hostname").toLowerCase();
  const entry = await hostDirectoryStub(env).getHost(hostname);
  if (!entry) throw new XrpcError(404, "HostNotFound", `${hostname} is not known to this relay`);
  return json(hostView(entry));
}
