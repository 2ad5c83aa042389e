import type { Config } from "../config";
import type { Env } from "../env";
import type { HostEntry } from "../ingest/host-directory";
import { normaliseHostname } from "../ingest/hostname";
import type { RepoEntry } from "../ingest/repo-index";
import { encodeFrame } from "../protocol/frame";
import { isValidDid } from "../protocol/syntax";
import { hostDirectoryStub, sequencerStub } from "../stubs";
import { listFanouts } from "./admin-fanout";
import { json, XrpcError } from "./errors";
import { ingesterOf, moveHost, startIngesting } from "./ingesters";
import {
  intParam,
  positionCursorParam,
  readJsonObject,
  requireMethod,
  stringField,
  type XrpcHandler,
} from "./params";
import { repoIndexFor } from "./repo-lookup";

// Admin endpoints, all under /admin/ and all behind `Authorization: Bearer <ADMIN_TOKEN>`.
// With no ADMIN_TOKEN configured they are disabled (403), so a fresh deploy is never open; a
// missing or wrong token is 401. Every action that changes something is logged as one JSON line.
//
//   GET  /admin/hosts?limit&cursor         every host with status, last error, counters, lag
//   POST /admin/hosts/ban        {hostname} disconnects it at once; requestCrawl refuses it
//   POST /admin/hosts/unban      {hostname} lifts the ban and resumes ingestion
//   POST /admin/hosts/reset-cursor {hostname} after a PDS reset its seq: resume live
//   POST /admin/hosts/limits     {hostname, eventsPerSecond, maxAccounts}
//   POST /admin/hosts/pin        {hostname, pinned?} an ingester object of its own (or not)
//   POST /admin/repos/takedown   {did}      stops relaying the account, emits #account
//   POST /admin/repos/restore    {did}      undoes a takedown, emits #account
//   GET  /admin/fanout                      regions, their Fanout shards and consumers' cursors

const DEFAULT_LIST_LIMIT = 200;
const MAX_LIST_LIMIT = 1000;

/** Compares in time independent of where the strings differ (the token is a secret). */
function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++)
    diff |= (a.charCodeAt(i) || 0) ^ (b.charCodeAt(i) || 0);
  return diff === 0;
}

function bearerToken(request: Request): string {
  const header = request.headers.get("Authorization") ?? "";
  return header.startsWith("Bearer ") ? header.slice("Bearer ".length) : "";
}

export function authorizeAdmin(request: Request, config: Config): void {
  if (!config.adminToken)
    throw new XrpcError(
      403,
      "AdminDisabled",
      "admin endpoints are disabled: set the ADMIN_TOKEN secret to enable them",
    );
  if (!constantTimeEqual(bearerToken(request), config.adminToken))
    throw new XrpcError(401, "AuthenticationRequired", "a valid admin bearer token is required");
}

/**
 * True when a request carries the valid admin token, on endpoints open to anyone (requestCrawl:
 * the operator's own crawls skip the public limits). Never refuses: without a valid token the
 * request is simply not the admin's.
 */
export function carriesAdminToken(request: Request, config: Config): boolean {
  return (
    config.adminToken !== undefined && constantTimeEqual(bearerToken(request), config.adminToken)
  );
}

function audit(action: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ msg: "admin action", action, ...fields }));
}

async function hostnameInput(request: Request, config: Config): Promise<string> {
  requireMethod(request, "POST");
  const input = await readJsonObject(request);
  return normaliseHostname(stringField(input, "hostname"), config.devMode);
}

async function knownHost(env: Env, hostname: string): Promise<HostEntry> {
  const entry = await hostDirectoryStub(env).getHost(hostname);
  if (!entry) throw new XrpcError(404, "HostNotFound", `${hostname} is not known to this relay`);
  return entry;
}

/** The admin view of a host: everything the directory knows, plus how long it has been quiet. */
function adminHostView(entry: HostEntry, nowMs: number) {
  return {
    ...entry,
    // ms since the last event accepted from the host (the relay cannot know the host's own head)
    lagMs: entry.lastEventMs === null ? null : nowMs - entry.lastEventMs,
  };
}

const listHosts: XrpcHandler = async (request, env) => {
  requireMethod(request, "GET");
  const url = new URL(request.url);
  const limit = intParam(url, "limit", 1, MAX_LIST_LIMIT, DEFAULT_LIST_LIMIT);
  const page = await hostDirectoryStub(env).listHosts(positionCursorParam(url), limit);
  const now = Date.now();
  const body: { hosts: ReturnType<typeof adminHostView>[]; cursor?: string } = {
    hosts: page.hosts.map((h) => adminHostView(h, now)),
  };
  if (page.cursor !== null) body.cursor = String(page.cursor);
  return json(body);
};

const banHost: XrpcHandler = async (request, env, config) => {
  const hostname = await hostnameInput(request, config);
  const entry = await hostDirectoryStub(env).setBanned(hostname, true);
  await ingesterOf(env, config, entry).ban(hostname);
  audit("ban host", { hostname });
  return json({ hostname, status: "banned" });
};

const unbanHost: XrpcHandler = async (request, env, config) => {
  const hostname = await hostnameInput(request, config);
  await knownHost(env, hostname);
  const entry = await hostDirectoryStub(env).setBanned(hostname, false);
  await ingesterOf(env, config, entry).unban(hostname);
  const report = await startIngesting(env, config, entry);
  audit("unban host", { hostname, status: report.status });
  return json({ hostname, status: report.status });
};

const resetCursor: XrpcHandler = async (request, env, config) => {
  const hostname = await hostnameInput(request, config);
  const entry = await knownHost(env, hostname);
  // the Sequencer first (it drops events at or below its cursor for the host as duplicates, and a
  // PDS that reset its seq sends lower seqs from now on), even if the host's ingester no longer
  // holds it; the ingester then sends what it still has of the old numbering and resets it again
  await sequencerStub(env).resetHostCursor(hostname);
  await ingesterOf(env, config, entry).resetCursor(hostname);
  audit("reset host cursor", { hostname });
  return json({ hostname, cursor: null });
};

function positiveInteger(input: Record<string, unknown>, key: string, min: number): number {
  const value = input[key];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min)
    throw new XrpcError(400, "InvalidRequest", `${key} must be an integer >= ${min}`);
  return value;
}

const setLimits: XrpcHandler = async (request, env, config) => {
  requireMethod(request, "POST");
  const input = await readJsonObject(request);
  const hostname = normaliseHostname(stringField(input, "hostname"), config.devMode);
  const limits = {
    eventsPerSecond: positiveInteger(input, "eventsPerSecond", 1),
    maxAccounts: positiveInteger(input, "maxAccounts", 0),
  };
  const entry = await knownHost(env, hostname);
  await hostDirectoryStub(env).setLimits(hostname, limits);
  await ingesterOf(env, config, entry).setLimits(hostname, limits);
  audit("set host limits", { hostname, ...limits });
  return json({ hostname, limits });
};

const pinHost: XrpcHandler = async (request, env, config) => {
  requireMethod(request, "POST");
  const input = await readJsonObject(request);
  const hostname = normaliseHostname(stringField(input, "hostname"), config.devMode);
  if (input.pinned !== undefined && typeof input.pinned !== "boolean")
    throw new XrpcError(400, "InvalidRequest", "pinned must be a boolean");
  const pinned = input.pinned !== false;
  await knownHost(env, hostname);
  // hand the host over with its cursor: the old object stops, the new one resumes from there
  const { moved, cursor } = await moveHost(env, config, hostname, pinned, { auto: false });
  if (moved) audit(pinned ? "pin host" : "unpin host", { hostname, cursor });
  return json({ hostname, pinned });
};

/**
 * The `#account` frame that tells consumers of a takedown, or of a restore: then the account's
 * own status on its host (active, or e.g. deactivated), never the relay's takedown.
 */
function accountFrame(did: string, takendown: boolean, repo: RepoEntry): Uint8Array {
  const time = new Date().toISOString();
  const { active, status } = takendown ? { active: false, status: "takendown" } : repo.upstream;
  return encodeFrame({
    kind: "account",
    body: active
      ? { seq: 0, did, time, active: true }
      : { seq: 0, did, time, active: false, ...(status ? { status } : {}) },
  });
}

async function setTakedown(
  request: Request,
  env: Env,
  config: Config,
  takendown: boolean,
): Promise<Response> {
  requireMethod(request, "POST");
  const did = stringField(await readJsonObject(request), "did");
  if (!isValidDid(did)) throw new XrpcError(400, "InvalidRequest", "did is not a valid DID");
  const index = repoIndexFor(env, config, did);
  const known = await index.getRepo(did);
  if (!known) throw new XrpcError(404, "RepoNotFound", `${did} is not known to this relay`);
  // The Sequencer is the authority: it refuses the DID's events from any host from now on, and
  // emits the #account only if the state changed, so a retried call emits nothing twice. The
  // index answers readers; setting it again on a retry is harmless.
  const outcome = await sequencerStub(env).setTakedown(
    did,
    takendown,
    accountFrame(did, takendown, known),
  );
  const repo = (await index.setTakedown(did, takendown)) ?? known;
  audit(takendown ? "take down account" : "restore account", {
    did,
    host: known.host,
    changed: outcome.changed,
    seq: outcome.seq,
  });
  return json({
    did,
    active: repo.active,
    ...(repo.status && !repo.active ? { status: repo.status } : {}),
    seq: outcome.seq,
  });
}

/** Admin routes by path; the router checks `authorizeAdmin` before any of them runs. */
export const ADMIN_ROUTES: Record<string, XrpcHandler> = {
  "/admin/hosts": listHosts,
  "/admin/hosts/ban": banHost,
  "/admin/hosts/unban": unbanHost,
  "/admin/hosts/reset-cursor": resetCursor,
  "/admin/hosts/limits": setLimits,
  "/admin/hosts/pin": pinHost,
  "/admin/repos/takedown": (request, env, config) => setTakedown(request, env, config, true),
  "/admin/repos/restore": (request, env, config) => setTakedown(request, env, config, false),
  "/admin/fanout": listFanouts,
};
