import { IdResolver, MemoryCache } from "@atproto/identity";
import { parseCommitAuthenticated } from "@atproto/sync";
import { Frame } from "@atproto/xrpc-server";
import { verifyCommitSignature } from "../src/protocol/commit";
import { parseDidDocument } from "../src/protocol/did-doc";
import { type PublicKey, parseDidKey } from "../src/protocol/did-key";
import { checkCommitEvent } from "../src/protocol/event-checks";
import { type CommitBody, decodeFrame } from "../src/protocol/frame";
import { loadCapturedFrames, loadDidDocuments } from "../test/fixtures/captured";
import { ScriptedPlc } from "../test/support/scripted-pds";
import { benchAccounts, opsPerSecond, opsPerSecondAsync } from "./fixtures";
import { reportFigure, reportRatio } from "./report";

// Decode + full verification of commit frames, one core, identities cached on both sides:
// ours (decodeFrame, checkCommitEvent: CAR/CID integrity and commit checks, signature against
// the cached #atproto key) against the path @atproto/sync's Firehose takes (frame decode, then
// parseCommitAuthenticated with a warm DID cache: CAR read, signature, MST proof of the ops).
// The headline runs on the frames captured from the reference PDS (test/fixtures); the
// generated 1-op and 10-op commits show how both scale with commit size.

const RUN_MS = 3000;
// Resolution must never leave the cache: a closed loopback port makes any miss fail loudly.
const NO_PLC = "http://127.0.0.1:9";

type Keys = Map<string, PublicKey>;

function ours(frames: Uint8Array[], keys: Keys): number {
  let i = 0;
  return opsPerSecond(() => {
    const frame = decodeFrame(frames[i++ % frames.length] as Uint8Array);
    if (frame.kind !== "commit") throw new Error("not a commit");
    const checked = checkCommitEvent(frame.body, Date.now());
    if (!verifyCommitSignature(checked.commit, keys.get(checked.did) as PublicKey))
      throw new Error("bad signature");
  }, RUN_MS);
}

async function reference(frames: Uint8Array[], idResolver: IdResolver): Promise<number> {
  let j = 0;
  return opsPerSecondAsync(async () => {
    const frame = Frame.fromBytes(frames[j++ % frames.length] as Uint8Array);
    // parseCommitAuthenticated yields one event per op: an empty commit yields none
    await parseCommitAuthenticated(idResolver, frame.body as never);
  }, RUN_MS);
}

/** Where our time goes: each stage alone, over the same frames. */
function breakdown(frames: Uint8Array[], keys: Keys): void {
  const bodies = frames.map((f) => (decodeFrame(f) as { body: CommitBody }).body);
  const checked = bodies.map((b) => checkCommitEvent(b, Date.now()));
  let i = 0;
  const decode = opsPerSecond(() => decodeFrame(frames[i++ % frames.length] as Uint8Array), 1000);
  const check = opsPerSecond(
    () => checkCommitEvent(bodies[i++ % bodies.length] as CommitBody, Date.now()),
    1000,
  );
  const verify = opsPerSecond(() => {
    const c = checked[i++ % checked.length];
    if (c) verifyCommitSignature(c.commit, keys.get(c.did) as PublicKey);
  }, 1000);
  reportFigure("validation stage: decodeFrame", decode, "events/s");
  reportFigure("validation stage: checkCommitEvent", check, "events/s");
  reportFigure("validation stage: verifyCommitSignature", verify, "events/s");
}

async function capturedFrames(): Promise<void> {
  const frames = loadCapturedFrames()
    .filter((c) => c.kind === "commit")
    .map((c) => c.bytes);
  const docs = loadDidDocuments();
  const keys: Keys = new Map();
  const didCache = new MemoryCache();
  for (const [did, doc] of Object.entries(docs)) {
    const key = parseDidDocument(doc).signingKey;
    if (key) keys.set(did, key);
    await didCache.cacheDid(did, doc as never);
  }
  const idResolver = new IdResolver({ plcUrl: NO_PLC, didCache });
  const k256 = frames.filter((f) => {
    const frame = decodeFrame(f);
    return frame.kind === "commit" && keys.get(frame.body.repo)?.curve === "secp256k1";
  }).length;
  reportRatio(
    `validation (${frames.length} captured commits, ${k256} secp256k1 + ${frames.length - k256} P-256)`,
    ours(frames, keys),
    await reference(frames, idResolver),
    "events/s",
  );
  breakdown(frames, keys);
}

async function generatedFrames(): Promise<void> {
  const plc = new ScriptedPlc();
  await plc.start();
  try {
    for (const ops of [1, 10]) {
      const accounts = await benchAccounts(8, 12, ops);
      for (const a of accounts) plc.register(a.did, a.keyDid, "https://pds.invalid");
      const frames = accounts.flatMap((a) => a.commits.map((c) => c.frame));
      const keys: Keys = new Map(accounts.map((a) => [a.did, parseDidKey(a.keyDid)]));
      const idResolver = new IdResolver({ plcUrl: plc.url, didCache: new MemoryCache() });
      for (const a of accounts) await idResolver.did.resolveAtprotoData(a.did);
      reportRatio(
        `validation (${ops}-op generated commits, 3/4 secp256k1 + 1/4 P-256)`,
        ours(frames, keys),
        await reference(frames, idResolver),
        "events/s",
      );
    }
  } finally {
    await plc.close();
  }
}

export default async function main(): Promise<void> {
  await capturedFrames();
  await generatedFrames();
}
