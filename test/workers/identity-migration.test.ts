import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { readConfig } from "../../src/config";
import { IdentityCache } from "../../src/identity/identity-cache";
import { identityMoves } from "../../src/identity/identity-moves";
import { ingesterObjectName } from "../../src/ingest/partition";
import { validateEvent } from "../../src/ingest/validate";
import { hostIngesterStub } from "../../src/stubs";
import {
  crawl,
  type Host,
  ingester,
  newHost,
  push,
  relayedCommits,
  sequencedThrough,
  until,
} from "./ingest-support";

// A migrated account's old PDS must stop speaking for it at once (issue 10, item 9). Documents
// are cached per ingester object, so validating the new host's #identity tells the
// HostDirectory, which makes the object holding the old host forget its copy: the old host's
// next commit of the account is re-checked and dropped as WrongHost, not accepted on the
// strength of a document cached for an hour.

const config = readConfig(env);

function objectOf(host: Host): string {
  return ingesterObjectName(host.hostname, false, config.ingestShards);
}

async function hostOnAnotherShard(than: Host): Promise<Host> {
  for (;;) {
    const host = await newHost();
    if (objectOf(host) !== objectOf(than)) return host;
  }
}

async function script(hostname: string, call: string): Promise<number> {
  const res = await fetch(`http://${hostname}/_script/${call}`, { method: "POST" });
  expect(res.status).toBe(200);
  return ((await res.json()) as { seq: number }).seq;
}

describe("account migration across ingester shards", () => {
  it("the new host's #identity makes the old host's ingester forget the account's document", async () => {
    const oldHost = await newHost();
    const newHostOfAccount = await hostOnAnotherShard(oldHost);
    const did = oldHost.did;
    expect((await crawl(oldHost.hostname)).status).toBe(200);
    const [first] = await push(oldHost, 1);
    await sequencedThrough(oldHost.hostname, first!);
    await ingester(oldHost.hostname).publishState(); // the RepoIndex now has did -> old host

    // the account moves: its document names the new host, which emits its #identity
    const seq = await script(newHostOfAccount.hostname, `migrate-in?did=${did}`);
    // validated on the new host's ingester object, as its ingester does
    const verdict = await runInDurableObject(
      hostIngesterStub(env, objectOf(newHostOfAccount)),
      async (_instance, state) =>
        validateEvent(
          { kind: "identity", body: { seq, did, time: new Date().toISOString() } },
          {
            hostname: newHostOfAccount.hostname,
            nowMs: Date.now(),
            identity: new IdentityCache(state.storage.sql, {
              plcUrls: config.plcUrls,
              devMode: config.devMode,
            }),
            repo: undefined,
            identityMoves: identityMoves(env, config.repoIndexShards),
          },
        ),
    );
    expect(verdict).toMatchObject({ accept: true, did, movedFrom: oldHost.hostname });

    // the old PDS keeps writing for the account
    await script(oldHost.hostname, `commit?did=${did}`);
    const report = await until(
      "the old host's commit to be handled",
      () => ingester(oldHost.hostname).getHost(oldHost.hostname),
      (r) => (r?.counters.accepted ?? 0) + (r?.counters.dropped.WrongHost ?? 0) >= 2,
    );
    expect(report?.counters.dropped.WrongHost).toBe(1);
    expect(report?.counters.accepted).toBe(1);
    expect((await relayedCommits(did)).length).toBe(1);
  });

  it("end to end: the new host's ingester validates its #identity and the old host's commits stop", async () => {
    const oldHost = await newHost();
    const newHostOfAccount = await hostOnAnotherShard(oldHost);
    const did = oldHost.did;
    expect((await crawl(oldHost.hostname)).status).toBe(200);
    expect((await crawl(newHostOfAccount.hostname)).status).toBe(200);
    const [first] = await push(oldHost, 1);
    await sequencedThrough(oldHost.hostname, first!);
    await ingester(oldHost.hostname).publishState();

    const seq = await script(newHostOfAccount.hostname, `migrate-in?did=${did}`);
    await sequencedThrough(newHostOfAccount.hostname, seq);

    await script(oldHost.hostname, `commit?did=${did}`);
    const report = await until(
      "the old host's commit to be handled",
      () => ingester(oldHost.hostname).getHost(oldHost.hostname),
      (r) => (r?.counters.accepted ?? 0) + (r?.counters.dropped.WrongHost ?? 0) >= 2,
    );
    expect(report?.counters.dropped.WrongHost).toBe(1);
    // the new host's commits of the account flow
    const [next] = [await script(newHostOfAccount.hostname, `commit?did=${did}`)];
    await sequencedThrough(newHostOfAccount.hostname, next!);
    expect((await relayedCommits(did)).length).toBe(2);
  });
});
