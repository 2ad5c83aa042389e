import { readConfig } from "../config";
import type { Env } from "../env";
import { ingesterObjectName, repoIndexShard } from "../ingest/partition";
import { encodeFrame } from "../protocol/frame";
import { isValidDid } from "../protocol/syntax";
import { hostDirectoryStub, hostIngesterStub, repoIndexStub, sequencerStub } from "../stubs";
import { json, XrpcError } from "./errors";
import { intParam, requireMethod } from "./params";
import { startIngesting } from "./request-crawl";

// Admin endpoints, all under /admin/ and all behind `Authorization: Bearer <ADMIN_TOKEN>`.
// With no ADMIN_TOKEN configured they are disabled (403), so a fresh deploy is never open.
// Every action is logged as one JSON line.

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export function authorizeAdmin(request: Request, env: Env): void {
  const token = readConfig(env).adminToken;
  if (!token)
    throw new XrpcError(
      403,
      "AdminDisabled",
      "admin endpoints are disabled: set the ADMIN_TOKEN secret",
    );
  const header = request.headers.get("Authorization") ?? "";
  const given = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : "";
  if (!constantTimeEqual(given, token)) {
    throw new XrpcError(401, "AuthenticationRequired", "a valid admin bearer token is required");
  }
}

async function body(request: Request): Promise<Record<string, unknown>> {
  try {
    const value = (await request.json()) as unknown;
    if (typeof value === "object" && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new XrpcError(400, "InvalidRequest", "body must be a JSON object");
}

function str(input: Record<string, unknown>, key: string): string {
  const v = input[key];
  if (typeof v !== "string" || v === "")
    throw new XrpcError(400, "InvalidRequest", `${key} is required`);
  return v;
}

function audit(action: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ msg: "admin action", action, ...fields }));
}

async function ingesterFor(env: Env, hostname: string) {
  const entry = await hostDirectoryStub(env).getHost(hostname);
  if (!entry) throw new XrpcError(404, "HostNotFound", `${hostname} is not known to this relay`);
  const name = ingesterObjectName(hostname, entry.pinned, readConfig(env).ingestShards);
  return { entry, ingester: hostIngesterStub(env, name) };
}

type AdminHandler = (request: Request, env: Env) => Promise<Response>;

const listHosts: AdminHandler = async (request, env) => {
  requireMethod(request, "GET");
  const url = new URL(request.url);
  const limit = intParam(url, "limit", 1, 1000, 200);
  const hosts = await hostDirectoryStub(env).listHosts(url.searchParams.get("cursor"), limit);
  const now = Date.now();
  return json({
    hosts: hosts.map((h) => ({ ...h, lagMs: h.lastEventMs ? now - h.lastEventMs : null })),
    cursor: hosts.length === limit ? hosts[hosts.length - 1]?.hostname : undefined,
  });
};

const banHost: AdminHandler = async (request, env) => {
  requireMethod(request, "POST");
  const hostname = str(await body(request), "hostname").toLowerCase();
  await hostDirectoryStub(env).setBanned(hostname, true);
  const entry = await hostDirectoryStub(env).getHost(hostname);
  if (entry) {
    const name = ingesterObjectName(hostname, entry.pinned, readConfig(env).ingestShards);
    await hostIngesterStub(env, name).ban(hostname);
  }
  audit("ban host", { hostname });
  return json({ hostname, status: "banned" });
};

const unbanHost: AdminHandler = async (request, env) => {
  requireMethod(request, "POST");
  const hostname = str(await body(request), "hostname").toLowerCase();
  const { ingester } = await ingesterFor(env, hostname);
  await hostDirectoryStub(env).setBanned(hostname, false);
  await ingester.unban(hostname);
  audit("unban host", { hostname });
  return json({ hostname, status: "idle" });
};

const resetCursor: AdminHandler = async (request, env) => {
  requireMethod(request, "POST");
  const hostname = str(await body(request), "hostname").toLowerCase();
  const { ingester } = await ingesterFor(env, hostname);
  await sequencerStub(env).resetHostCursor(hostname);
  await ingester.resetCursor(hostname);
  audit("reset host cursor", { hostname });
  return json({ hostname, cursor: null });
};

const setLimits: AdminHandler = async (request, env) => {
  requireMethod(request, "POST");
  const input = await body(request);
  const hostname = str(input, "hostname").toLowerCase();
  const eventsPerSecond = input.eventsPerSecond;
  const maxAccounts = input.maxAccounts;
  if (
    typeof eventsPerSecond !== "number" ||
    eventsPerSecond < 1 ||
    typeof maxAccounts !== "number" ||
    maxAccounts < 0
  ) {
    throw new XrpcError(
      400,
      "InvalidRequest",
      "eventsPerSecond (>= 1) and maxAccounts (>= 0) are required numbers",
    );
  }
  const { ingester } = await ingesterFor(env, hostname);
  const limits = { eventsPerSecond, maxAccounts };
  await hostDirectoryStub(env).setLimits(hostname, limits);
  await ingester.setLimits(hostname, limits);
  audit("set host limits", { hostname, ...limits });
  return json({ hostname, limits });
};

const pinHost: AdminHandler = async (request, env) => {
  requireMethod(request, "POST");
  const input = await body(request);
  const hostname = str(input, "hostname").toLowerCase();
  const pinned = input.pinned !== false;
  const { entry, ingester } = await ingesterFor(env, hostname);
  if (entry.pinned === pinned) return json({ hostname, pinned });
  const cursor = await ingester.release(hostname);
  const updated = await hostDirectoryStub(env).setPinned(hostname, pinned);
  if (updated && !updated.banned) await startIngesting(env, updated, cursor);
  audit(pinned ? "pin host" : "unpin host", { hostname, cursor });
  return json({ hostname, pinned });
};

async function setTakedown(request: Request, env: Env, takendown: boolean): Promise<Response> {
  requireMethod(request, "POST");
  const did = str(await body(request), "did");
  if (!isValidDid(did)) throw new XrpcError(400, "InvalidRequest", "did is not a valid DID");
  const shard = repoIndexShard(did, readConfig(env).repoIndexShards);
  const repo = await repoIndexStub(env, shard).getRepo(did);
  if (!repo) throw new XrpcError(404, "RepoNotFound", `${did} is not known to this relay`);
  const { ingester } = await ingesterFor(env, repo.host);
  await ingester.setRelayTakedown(did, repo.host, takendown);
  await repoIndexStub(env, shard).setStatus(did, !takendown, takendown ? "takendown" : null);
  // consumers learn of it through the stream, like any other status change
  const frame = encodeFrame({
    kind: "account",
    body: takendown
      ? { seq: 0, did, time: new Date().toISOString(), active: false, status: "takendown" }
      : { seq: 0, did, time: new Date().toISOString(), active: true },
  });
  const appended = await sequencerStub(env).emitRelayEvent(frame);
  audit(takendown ? "take down account" : "restore account", {
    did,
    host: repo.host,
    seq: appended.lastSeq,
  });
  return json({
    did,
    active: !takendown,
    status: takendown ? "takendown" : undefined,
    seq: appended.lastSeq,
  });
}

export const ADMIN_ROUTES: Record<string, AdminHandler> = {
  "/admin/hosts": listHosts,
  "/admin/hosts/ban": banHost,
  "/admin/hosts/unban": unbanHost,
  "/admin/hosts/reset-cursor": resetCursor,
  "/admin/hosts/limits": setLimits,
  "/admin/hosts/pin": pinHost,
  "/admin/repos/takedown": (request, env) => setTakedown(request, env, true),
  "/admin/repos/restore": (request, env) => setTakedown(request, env, false),
};
