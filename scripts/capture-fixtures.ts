import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AtpAgent } from "@atproto/api";
import { P256Keypair, Secp256k1Keypair } from "@atproto/crypto";
import { Frame } from "@atproto/xrpc-server";
import WebSocket from "ws";
import {
  encodeFramesFile,
  FIXTURES_DIR,
  type FixtureManifest,
  type FrameExpectation,
  framesFilePath,
} from "../test/fixtures/captured";
import { runActivity } from "../test/support/activity";
import { type PdsHost, type PdsNetwork, startPdsNetwork } from "../test/support/pds-network";
import { referenceCommits } from "../test/support/reference-frames";

// Captures real subscribeRepos frames for the tests and the validation benchmark:
// `npx tsx scripts/capture-fixtures.ts`. Runs a reference PDS (secp256k1 account keys, the PDS's
// only kind) through a scripted session that touches every event kind, replays its firehose from
// cursor 0 with a raw WebSocket, and adds commits signed with P-256 made by @atproto/repo for an
// account registered on the same PLC. Writes test/fixtures/{frames/*.bin, manifest.json,
// did-docs.json}. What the reference decoder reads from each frame goes into the manifest as the
// expectation our decoder is held to. Output changes on every run (keys, timestamps).

const ACTIVITY_SEED = 20261124;
const ACTIVITY_ACTIONS = 40;
const P256_COMMITS = 8;
const P256_OPS_PER_COMMIT = 2;
const REPLAY_IDLE_MS = 3_000;

// 1x1 PNG: a post with a real image blob (the PDS no longer lists blobs in `blobs`: it sends []).
const PNG_1X1 = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
  "base64",
);

async function scriptedSession(network: PdsNetwork, host: PdsHost): Promise<void> {
  const [alice, bob, carol] = host.accounts;
  if (!alice || !bob || !carol) throw new Error("need three accounts");
  const repo = (a: { did: string }) => a.did;
  // a multi-op commit, with a profile and a post
  await alice.agent.com.atproto.repo.applyWrites({
    repo: repo(alice),
    writes: [
      {
        $type: "com.atproto.repo.applyWrites#create",
        collection: "app.bsky.actor.profile",
        rkey: "self",
        value: { $type: "app.bsky.actor.profile", displayName: "Alice" },
      },
      ...[1, 2, 3, 4].map((n) => ({
        $type: "com.atproto.repo.applyWrites#create" as const,
        collection: "app.bsky.feed.post",
        value: {
          $type: "app.bsky.feed.post",
          text: `batch post ${n}`,
          createdAt: new Date().toISOString(),
        },
      })),
    ],
  });
  // an update op
  await putProfile(bob.agent, bob.did, "Bob");
  await putProfile(bob.agent, bob.did, "Bob, renamed");
  // a commit that references a blob
  const blob = await carol.agent.uploadBlob(PNG_1X1, { encoding: "image/png" });
  await carol.agent.post({
    text: "a picture",
    embed: { $type: "app.bsky.embed.images", images: [{ image: blob.data.blob, alt: "dot" }] },
    createdAt: new Date().toISOString(),
  });
  await runActivity(network, { actions: ACTIVITY_ACTIONS, seed: ACTIVITY_SEED });
  // the rare kinds, made sure of rather than left to chance: handle change, deactivate/reactivate
  carol.handle = "carol-renamed.test";
  await carol.agent.com.atproto.identity.updateHandle({ handle: carol.handle });
  await bob.agent.com.atproto.server.deactivateAccount({});
  await bob.agent.com.atproto.server.activateAccount();
  const posts = await alice.agent.com.atproto.repo.listRecords({
    repo: alice.did,
    collection: "app.bsky.feed.post",
    limit: 1,
  });
  const first = posts.data.records[0];
  if (first) await alice.agent.deletePost(first.uri);
}

async function putProfile(agent: AtpAgent, did: string, displayName: string): Promise<void> {
  await agent.com.atproto.repo.putRecord({
    repo: did,
    collection: "app.bsky.actor.profile",
    rkey: "self",
    record: { $type: "app.bsky.actor.profile", displayName },
  });
}

/** Replays a PDS's firehose from cursor 0 until it has been quiet for REPLAY_IDLE_MS. */
function replay(host: PdsHost): Promise<Uint8Array[]> {
  const url = `ws://${host.hostname}/xrpc/com.atproto.sync.subscribeRepos?cursor=0`;
  return new Promise((resolve, reject) => {
    const frames: Uint8Array[] = [];
    const ws = new WebSocket(url);
    let idle = setTimeout(() => ws.close(), REPLAY_IDLE_MS);
    ws.on("message", (data: Buffer) => {
      frames.push(new Uint8Array(data));
      clearTimeout(idle);
      idle = setTimeout(() => ws.close(), REPLAY_IDLE_MS);
    });
    ws.on("close", () => {
      clearTimeout(idle);
      resolve(frames);
    });
    ws.on("error", reject);
  });
}

function text(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

/** What the reference decoder reads from a frame. */
function expectationOf(bytes: Uint8Array): FrameExpectation {
  const frame = Frame.fromBytes(bytes);
  if (frame.isError())
    return { kind: "error", seq: null, did: null, status: frame.body.error ?? null };
  const t = frame.header.t ?? "";
  const body = frame.body as Record<string, unknown>;
  const seq = typeof body.seq === "number" ? body.seq : null;
  switch (t) {
    case "#commit":
      return {
        kind: "commit",
        seq,
        did: String(body.repo),
        rev: String(body.rev),
        commit: String(body.commit),
        since: text(body.since),
        ops: (body.ops as Record<string, unknown>[]).map((op) => [
          String(op.action),
          String(op.path),
          text(op.cid),
        ]),
        blobs: (body.blobs as unknown[]).map(String),
      };
    case "#sync":
      return { kind: "sync", seq, did: String(body.did), rev: String(body.rev) };
    case "#identity":
      return { kind: "identity", seq, did: String(body.did), handle: text(body.handle) };
    case "#account":
      return {
        kind: "account",
        seq,
        did: String(body.did),
        active: body.active === true,
        status: text(body.status),
      };
    default:
      throw new Error(`unexpected frame type ${t}`);
  }
}

async function p256Account(network: PdsNetwork): Promise<{ did: string; frames: Uint8Array[] }> {
  const signingKey = await P256Keypair.create();
  const rotationKey = await Secp256k1Keypair.create();
  const did = await network.plc.getClient().createDid({
    signingKey: signingKey.did(),
    handle: "p256.test",
    pds: "https://pds.invalid",
    rotationKeys: [rotationKey.did()],
    signer: rotationKey,
  });
  const commits = await referenceCommits(did, signingKey, P256_COMMITS, P256_OPS_PER_COMMIT);
  return { did, frames: commits.map((c) => c.frame) };
}

async function main(): Promise<void> {
  const network = await startPdsNetwork({ pdsCount: 1, accountsPerPds: 3 });
  try {
    const host = network.hosts[0] as PdsHost;
    await scriptedSession(network, host);
    const pdsFrames = await replay(host);
    const p256 = await p256Account(network);

    const manifest: FixtureManifest = {
      capturedAt: new Date().toISOString(),
      source:
        "@atproto/pds 0.4.217 (@atproto/dev-env TestPds + TestPlc), replayed from cursor 0; " +
        "P-256 commits made by @atproto/repo for a DID on the same PLC",
      files: {
        "pds-k256": {
          description: `reference PDS firehose: 3 accounts created, a 5-op commit, an update, a post with an image, ${ACTIVITY_ACTIONS} seeded actions, a handle change, deactivate + reactivate, a delete`,
          keyType: "secp256k1",
          frames: pdsFrames.map(expectationOf),
        },
        "repo-p256": {
          description: `${P256_COMMITS} commits of ${P256_OPS_PER_COMMIT} creates signed with P-256 by @atproto/repo`,
          keyType: "p256",
          frames: p256.frames.map(expectationOf),
        },
      },
    };

    const dids = [...host.accounts.map((a) => a.did), p256.did];
    const docs: Record<string, unknown> = {};
    for (const did of dids) {
      const res = await fetch(`${network.plcUrl}/${encodeURIComponent(did)}`);
      if (!res.ok) throw new Error(`PLC has no document for ${did}: ${res.status}`);
      docs[did] = await res.json();
    }

    mkdirSync(join(FIXTURES_DIR, "frames"), { recursive: true });
    writeFileSync(framesFilePath("pds-k256"), encodeFramesFile(pdsFrames));
    writeFileSync(framesFilePath("repo-p256"), encodeFramesFile(p256.frames));
    writeFileSync(join(FIXTURES_DIR, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    writeFileSync(join(FIXTURES_DIR, "did-docs.json"), `${JSON.stringify(docs, null, 2)}\n`);

    for (const [name, entry] of Object.entries(manifest.files)) {
      const kinds: Record<string, number> = {};
      for (const f of entry.frames) kinds[f.kind] = (kinds[f.kind] ?? 0) + 1;
      const bytes = statSync(framesFilePath(name)).size;
      console.log(
        `${name}: ${entry.frames.length} frames, ${bytes} bytes, ${JSON.stringify(kinds)}`,
      );
    }
    const manifestBytes = readFileSync(join(FIXTURES_DIR, "manifest.json")).byteLength;
    console.log(`manifest.json: ${manifestBytes} bytes; did-docs.json: ${dids.length} documents`);
  } finally {
    await network.close();
  }
}

await main();
