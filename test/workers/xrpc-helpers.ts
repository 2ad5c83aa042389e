import { env, SELF } from "cloudflare:test";
import { expect, inject } from "vitest";
import { type Config, readConfig } from "../../src/config";
import { ingesterObjectName } from "../../src/ingest/partition";
import { hostIngesterStub } from "../../src/stubs";
import { route } from "../../src/xrpc/router";
import { RELAY } from "./support";

// Helpers shared by the XRPC and admin tests in workerd.

export const ADMIN_HEADERS = {
  Authorization: "Bearer test-admin-token",
  "Content-Type": "application/json",
};

/** The production policy: what a deployed relay does (the pool itself runs with DEV_MODE). */
export function productionConfig(overrides: Partial<Config> = {}): Config {
  return { ...readConfig(env), devMode: false, ...overrides };
}

export function get(path: string, headers?: Record<string, string>): Promise<Response> {
  return SELF.fetch(`${RELAY}${path}`, { headers });
}

export function post(
  path: string,
  body: unknown,
  headers: Record<string, string> = { "Content-Type": "application/json" },
): Promise<Response> {
  return SELF.fetch(`${RELAY}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
}

export function postRaw(path: string, body: string): Promise<Response> {
  return SELF.fetch(`${RELAY}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body,
  });
}

/** Calls the router directly with another configuration than the Worker's. */
export function routeWith(config: Config, path: string, init?: RequestInit): Promise<Response> {
  return route(new Request(`${RELAY}${path}`, init), env, config);
}

export function requestCrawl(hostname: string, config?: Config): Promise<Response> {
  const init = {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ hostname }),
  };
  return config
    ? routeWith(config, "/xrpc/com.atproto.sync.requestCrawl", init)
    : SELF.fetch(`${RELAY}/xrpc/com.atproto.sync.requestCrawl`, init);
}

/** What the lexicon says of a query's output: null when valid (validated in Node). */
export async function lexiconError(nsid: string, value: unknown): Promise<string | null> {
  const res = await fetch(inject("lexiconUrl"), {
    method: "POST",
    body: JSON.stringify({ nsid, value }),
  });
  return ((await res.json()) as { ok: boolean; error: string | null }).error;
}

/** Asserts a query's output against its lexicon (src/lexicons, see xrpc-test-servers.ts). */
export async function expectLexiconValid(nsid: string, value: unknown): Promise<void> {
  expect(await lexiconError(nsid, value), `${nsid} output ${JSON.stringify(value)}`).toBeNull();
}

export async function expectXrpcError(
  res: Response,
  status: number,
  error: string,
): Promise<{ error: string; message: string }> {
  const body = (await res.json()) as { error: string; message: string };
  expect({ status: res.status, error: body.error }).toEqual({ status, error });
  expect(body.message).toEqual(expect.any(String));
  expect(res.headers.get("Server")).toContain("atproto-relay");
  return body;
}

export type ScriptedHost = { id: string; hostname: string; did: string };

const control = () => inject("upstreamControlUrl");

/** A new scripted PDS on loopback with one account (test/support/upstream-control.ts). */
export async function newScriptedHost(): Promise<ScriptedHost> {
  return (await (await fetch(`${control()}/pds`, { method: "POST" })).json()) as ScriptedHost;
}

export async function pushCommits(host: ScriptedHost, count: number): Promise<void> {
  await fetch(`${control()}/pds/${host.id}/good?count=${count}`, { method: "POST" });
}

/** How many sockets the relay holds open to a scripted host. */
export async function upstreamSubscribers(host: ScriptedHost): Promise<number> {
  const state = (await (await fetch(`${control()}/pds/${host.id}`)).json()) as {
    subscribers: number;
  };
  return state.subscribers;
}

export function ingesterFor(hostname: string, pinned = false) {
  return hostIngesterStub(env, ingesterObjectName(hostname, pinned, readConfig(env).ingestShards));
}

export async function waitUntil(
  what: string,
  predicate: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Crawls a new scripted host, makes it emit `count` commits, waits until the relay accepted
 * them, and has the ingester publish its state (directory and repo index) at once instead of
 * at its next reporting tick.
 */
export async function crawledHostWithCommits(count: number): Promise<ScriptedHost> {
  const host = await newScriptedHost();
  expect((await requestCrawl(host.hostname)).status).toBe(200);
  await waitUntil("the relay subscribed", async () => (await upstreamSubscribers(host)) === 1);
  await pushCommits(host, count);
  const ingester = ingesterFor(host.hostname);
  await waitUntil(
    `${count} events were accepted`,
    async () => (await ingester.getHost(host.hostname))?.counters.accepted === count,
  );
  await ingester.publishState();
  return host;
}
