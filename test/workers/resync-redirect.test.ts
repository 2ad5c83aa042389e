import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { readConfig } from "../../src/config";
import { repoIndexShard } from "../../src/ingest/partition";
import type { RepoUpdate } from "../../src/ingest/repo-index";
import { meterSnapshot, resetMeter } from "../../src/metering/meter";
import { repoIndexStub } from "../../src/stubs";
import { RELAY } from "./support";
import {
  ADMIN_HEADERS,
  crawledHostWithCommits,
  expectXrpcError,
  post,
  productionConfig,
  routeWith,
} from "./xrpc-helpers";

// getRepo, getRecord and getBlocks: the relay holds no repositories and sends the consumer to
// the account's PDS, the host it crawls the account from.

const METHODS = ["getRepo", "getRecord", "getBlocks"] as const;

function fetchManual(path: string): Promise<Response> {
  return SELF.fetch(`${RELAY}${path}`, { redirect: "manual" });
}

async function indexRepo(update: RepoUpdate): Promise<void> {
  const shard = repoIndexShard(update.did, readConfig(env).repoIndexShards);
  await repoIndexStub(env, shard).applyRepoUpdates([update]);
}

function repo(did: string, fields: Partial<RepoUpdate> = {}): RepoUpdate {
  return {
    did,
    host: "pds.example.com",
    rev: "3l6jd7dvzeg2c",
    head: "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
    active: true,
    status: null,
    ...fields,
  };
}

describe("resync from the source", () => {
  it.each(METHODS)(
    "%s of a crawled account redirects to its PDS, same path and query",
    async (method) => {
      const host = await crawledHostWithCommits(1);
      const query = {
        getRepo: `did=${host.did}&since=3l6jd7dvzeg2c`,
        getRecord: `did=${host.did}&collection=app.bsky.feed.post&rkey=3l6jd7dvzeg2c`,
        getBlocks: `did=${host.did}&cids=bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm`,
      }[method];
      const path = `/xrpc/com.atproto.sync.${method}?${query}`;
      const res = await fetchManual(path);
      expect(res.status).toBe(302);
      // the scripted host is on loopback, which DEV_MODE crawls over plain http
      expect(res.headers.get("Location")).toBe(`http://${host.hostname}${path}`);
    },
  );

  it("redirects over https to a public host, and to loopback only in DEV_MODE", async () => {
    const did = "did:plc:resyncpublic0000000000000";
    await indexRepo(repo(did, { host: "pds.example.com" }));
    const path = `/xrpc/com.atproto.sync.getRepo?did=${did}`;
    await new Promise((r) => setTimeout(r, 10)); // the meter sums rows a microtask later
    resetMeter();
    const res = await fetchManual(path);
    expect(res.status).toBe(302);
    expect(res.headers.get("Location")).toBe(`https://pds.example.com${path}`);
    // one RepoIndex request, nothing written
    await new Promise((r) => setTimeout(r, 10));
    const units = meterSnapshot();
    // (other objects of this file's earlier tests may run meanwhile: only the RepoIndex counts)
    expect(units.calls["RepoIndex.getRepo"]).toBe(1);
    expect(units.objects.RepoIndex?.requests).toBe(1);
    expect(units.objects.RepoIndex?.rowsWritten).toBe(0);

    const loopback = "did:plc:resyncloopback00000000000";
    await indexRepo(repo(loopback, { host: "localhost:2583" }));
    const production = await routeWith(
      productionConfig(),
      `/xrpc/com.atproto.sync.getRepo?did=${loopback}`,
      { redirect: "manual" },
    );
    expect(production.headers.get("Location")).toBe(
      `https://localhost:2583/xrpc/com.atproto.sync.getRepo?did=${loopback}`,
    );
  });

  it.each(METHODS)(
    "%s: a missing or invalid did is InvalidRequest, an unknown one RepoNotFound",
    async (method) => {
      await expectXrpcError(
        await fetchManual(`/xrpc/com.atproto.sync.${method}`),
        400,
        "InvalidRequest",
      );
      await expectXrpcError(
        await fetchManual(`/xrpc/com.atproto.sync.${method}?did=not-a-did`),
        400,
        "InvalidRequest",
      );
      await expectXrpcError(
        await fetchManual(`/xrpc/com.atproto.sync.${method}?did=did:plc:resyncunknown0000000000`),
        404,
        "RepoNotFound",
      );
    },
  );

  it.each([
    ["deactivated", 400, "RepoDeactivated"],
    ["suspended", 400, "RepoSuspended"],
    ["takendown", 400, "RepoTakendown"],
    ["deleted", 404, "RepoNotFound"],
  ])("an account %s on its host is not redirected: %i %s", async (status, code, error) => {
    const did = `did:plc:resync${status.padEnd(19, "x")}`;
    await indexRepo(repo(did, { active: false, status }));
    for (const method of METHODS)
      await expectXrpcError(
        await fetchManual(`/xrpc/com.atproto.sync.${method}?did=${did}`),
        code,
        error,
      );
  });

  it("an account taken down by the relay is RepoTakendown, and redirected again once restored", async () => {
    const host = await crawledHostWithCommits(1);
    const path = `/xrpc/com.atproto.sync.getRepo?did=${host.did}`;
    expect((await post("/admin/repos/takedown", { did: host.did }, ADMIN_HEADERS)).status).toBe(
      200,
    );
    await expectXrpcError(await fetchManual(path), 400, "RepoTakendown");
    expect((await post("/admin/repos/restore", { did: host.did }, ADMIN_HEADERS)).status).toBe(200);
    const res = await fetchManual(path);
    expect(res.status).toBe(302);
    expect(res.headers.get("Location")).toBe(`http://${host.hostname}${path}`);
  });
});
