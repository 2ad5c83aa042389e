import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { IdResolver, MemoryCache } from "@atproto/identity";
import { parseCommitAuthenticated } from "@atproto/sync";
import { Frame } from "@atproto/xrpc-server";
import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { readCar } from "../src/protocol/car";
import {
  type SignedCommit,
  unsignedCommitBytes,
  verifyCommitSignatureAsync,
} from "../src/protocol/commit";
import { parseDidDocument } from "../src/protocol/did-doc";
import { formatDidKey, type PublicKey, parseDidKey } from "../src/protocol/did-key";
import { type CheckedCommit, checkCommitEvent } from "../src/protocol/event-checks";
import { type CommitBody, canonicalEventFrame, decodeFrame } from "../src/protocol/frame";
import { checkCommitOps } from "../src/protocol/mst";
import { setSha256, sha256Js } from "../src/protocol/sha256";
import { installRelaySha256, nativeSha256, relaySha256 } from "../src/relay-sha256";
import { loadCapturedFrames, loadDidDocuments } from "../test/fixtures/captured";
import { startRelay } from "../test/support/relay-process";
import { ScriptedPlc } from "../test/support/scripted-pds";
import { pinThisProcess } from "./cpu-placement";
import { benchAccounts } from "./fixtures";
import { reportFigure, reportRatio } from "./report";

// Decode + full verification of commit frames on one core, identities cached on both sides:
// ours (decodeFrame, checkCommitEvent: CAR/CID integrity, commit checks and the MST proof of the
// ops, then the signature against the cached #atproto key, as the ingester awaits it) against
// the path @atproto/sync's Firehose takes (frame decode, then parseCommitAuthenticated with a
// warm DID cache: CAR read, signature, MST proof of the ops).
//
// "Keys seen for the first time" is the headline (issue 11): every event gets a fresh PublicKey
// object, as a freshly parsed DID document would give, so no per-key cache helps (libsecp256k1
// parses the compressed point, WebCrypto imports the key). "Hot keys" reuses the key objects the
// identity cache would hold. "before" is the previous signature backend (@noble/curves, a key
// seen for the first time), run in the same process so the ratio is fair on a shared machine.

const RUN_MS = 3000;
const STAGE_MS = 1000;
const WARM_UP_MS = 1000;
const STAGE_WARM_UP_MS = 200;
// Resolution must never leave the cache: a closed loopback port makes any miss fail loudly.
const NO_PLC = "http://127.0.0.1:9";

type Keys = Map<string, PublicKey>;

/** Operations per second of wall time and per second of this process's CPU time. */
type Rate = { wall: number; cpu: number };

// The machine is shared: wall-clock rates drop whenever another process takes the core, so each
// headline figure is also given per CPU-second of this process (user + system, all threads: Node's
// WebCrypto runs P-256 verifications on its thread pool, and that time counts too).
// Each run is preceded by a warm-up of WARM_UP_MS, for ours and the reference alike: V8 compiles
// the 1.2 MB libsecp256k1 module with its baseline compiler first and optimises hot functions
// later, which costs the first second or two of a fresh process (a relay runs for hours).
async function measure(fn: () => unknown, ms: number, warmUpMs = WARM_UP_MS): Promise<Rate> {
  const warmUpEnd = performance.now() + warmUpMs;
  while (performance.now() < warmUpEnd) {
    const result = fn();
    if (result instanceof Promise) await result;
  }
  let n = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    const result = fn();
    if (result instanceof Promise) await result;
    n++;
    now = performance.now();
  }
  const cpu = process.cpuUsage(cpuStart);
  return { wall: (n * 1000) / (now - start), cpu: (n * 1e6) / (cpu.user + cpu.system) };
}

function reportRates(name: string, ours: Rate, reference: Rate): void {
  reportRatio(name, ours.wall, reference.wall, "events/s");
  reportRatio(`${name}, per CPU-second`, ours.cpu, reference.cpu, "events/s");
}
type KeyMode = "first sight" | "hot";

function keyFor(keys: Keys, did: string, mode: KeyMode): PublicKey {
  const key = keys.get(did) as PublicKey;
  return mode === "hot" ? key : { curve: key.curve, compressed: key.compressed };
}

/** The previous backend: @noble/curves for both curves, no per-key state (a cold key). */
function verifyWithNoble(commit: SignedCommit, key: PublicKey): boolean {
  const curve = key.curve === "secp256k1" ? secp256k1 : p256;
  return curve.verify(commit.sig, unsignedCommitBytes(commit), key.compressed, { lowS: true });
}

function commitOf(frameBytes: Uint8Array): CheckedCommit {
  const frame = decodeFrame(frameBytes);
  if (frame.kind !== "commit") throw new Error("not a commit");
  return checkCommitEvent(frame.body, Date.now());
}

function ours(frames: Uint8Array[], keys: Keys, mode: KeyMode): Promise<Rate> {
  let i = 0;
  return measure(async () => {
    const checked = commitOf(frames[i++ % frames.length] as Uint8Array);
    if (!(await verifyCommitSignatureAsync(checked.commit, keyFor(keys, checked.did, mode))))
      throw new Error("bad signature");
  }, RUN_MS);
}

function oursBefore(frames: Uint8Array[], keys: Keys): Promise<Rate> {
  let i = 0;
  return measure(() => {
    const checked = commitOf(frames[i++ % frames.length] as Uint8Array);
    if (!verifyWithNoble(checked.commit, keys.get(checked.did) as PublicKey))
      throw new Error("bad signature");
  }, RUN_MS);
}

async function reference(frames: Uint8Array[], idResolver: IdResolver): Promise<Rate> {
  let j = 0;
  return measure(async () => {
    const frame = Frame.fromBytes(frames[j++ % frames.length] as Uint8Array);
    // parseCommitAuthenticated yields one event per op: an empty commit yields none
    await parseCommitAuthenticated(idResolver, frame.body as never);
  }, RUN_MS);
}

function reportBeforeAfter(name: string, before: number, after: number, unit: string): void {
  const f = (n: number) => Math.round(n).toLocaleString("en-US");
  console.log(
    `${name}: before ${f(before)} ${unit}, after ${f(after)} ${unit}, ×${(after / before).toFixed(2)}`,
  );
}

/** One stage alone, per CPU-second (the figures below are CPU-based: see `measure`). */
async function stage(fn: () => unknown): Promise<number> {
  return (await measure(fn, STAGE_MS, STAGE_WARM_UP_MS)).cpu;
}

function reportStage(name: string, perSecond: number, unit = "events/s"): void {
  reportFigure(
    `validation stage: ${name}`,
    perSecond,
    unit,
    `${(1e6 / perSecond).toFixed(1)} µs each`,
  );
}

/** Where our time goes: each stage alone, over the same frames, before and after. */
async function breakdown(frames: Uint8Array[], keys: Keys): Promise<void> {
  const bodies = frames.map((f) => (decodeFrame(f) as { body: CommitBody }).body);
  const checked = bodies.map((b) => checkCommitEvent(b, Date.now()));
  const blocks = checked.flatMap((c) => [...c.blocks.blocks.values()]);
  const withProof = bodies.flatMap((b, k) => (b.prevData ? [[b, checked[k]] as const] : []));
  let i = 0;
  reportStage(
    "decodeFrame",
    await stage(() => decodeFrame(frames[i++ % frames.length] as Uint8Array)),
  );
  // outside validation: what the ingester forwards for an accepted event (the frame's own bytes
  // when it had only the lexicon's fields); frames in buffers of their own, as a socket gives them
  const own = frames.map((f) => decodeFrame(f.slice()) as { kind: "commit"; body: CommitBody });
  reportStage(
    "canonicalEventFrame (forwarded bytes of an accepted event)",
    await stage(() => canonicalEventFrame(own[i++ % own.length] as (typeof own)[number])),
  );
  reportStage(
    "readCar (CAR parse + sha256 of every block)",
    await stage(() => readCar((bodies[i++ % bodies.length] as CommitBody).blocks)),
  );
  reportStage(
    `checkCommitOps (MST proof, ${withProof.length} of ${bodies.length} commits carry prevData)`,
    await stage(() => {
      const [body, c] = withProof[i++ % withProof.length] as (typeof withProof)[number];
      const { commit, blocks: car } = c as CheckedCommit;
      checkCommitOps(commit.data, body.ops, car.blocks);
    }),
  );
  reportStage(
    "checkCommitEvent (all stateless checks, includes the two above)",
    await stage(() => checkCommitEvent(bodies[i++ % bodies.length] as CommitBody, Date.now())),
  );
  // SHA-256 of CAR blocks (~190 bytes each here): ours in JavaScript (src/protocol/sha256.ts, the
  // default), the relay's (node:crypto from 768 bytes on), @noble/hashes (what we used before),
  // the runtime's native createHash on every block (its per-call overhead eats the gain on small
  // inputs) and crypto.subtle.digest (asynchronous: a promise per block)
  const perCommit = (blocks.length / bodies.length).toFixed(1);
  const nextBlock = () => blocks[i++ % blocks.length] as Uint8Array;
  reportStage(
    `block sha256, ours in JavaScript (${blocks.length} blocks, ${perCommit} per commit)`,
    await stage(() => sha256Js(nextBlock())),
    "blocks/s",
  );
  reportStage(
    "block sha256, the relay's (node:crypto from 768 bytes on)",
    await stage(() => relaySha256(nextBlock())),
    "blocks/s",
  );
  reportStage("block sha256, @noble/hashes", await stage(() => sha256(nextBlock())), "blocks/s");
  reportStage(
    "block sha256, node:crypto createHash",
    await stage(() => nativeSha256(nextBlock())),
    "blocks/s",
  );
  reportStage(
    "block sha256, crypto.subtle.digest (awaited)",
    await stage(() => crypto.subtle.digest("SHA-256", nextBlock())),
    "blocks/s",
  );
  // the stateless checks with @noble/hashes in place of ours (the "before" of the hash change)
  setSha256(sha256);
  reportStage(
    "checkCommitEvent with @noble/hashes",
    await stage(() => checkCommitEvent(bodies[i++ % bodies.length] as CommitBody, Date.now())),
  );
  installRelaySha256();
  const signatures = async (of: CheckedCommit[], label: string) => {
    let j = 0;
    const next = () => of[j++ % of.length] as CheckedCommit;
    const before = await stage(() => {
      const c = next();
      return verifyWithNoble(c.commit, keys.get(c.did) as PublicKey);
    });
    for (const mode of ["first sight", "hot"] as const) {
      const after = await stage(() => {
        const c = next();
        return verifyCommitSignatureAsync(c.commit, keyFor(keys, c.did, mode));
      });
      reportBeforeAfter(
        `validation stage: ${label} signatures, ${mode === "hot" ? "hot keys" : "keys seen for the first time"} (before: @noble/curves)`,
        before,
        after,
        "events/s",
      );
    }
  };
  await signatures(checked, "commit (captured mix)");
  for (const curve of ["secp256k1", "p256"] as const)
    await signatures(
      checked.filter((c) => keys.get(c.did)?.curve === curve),
      curve,
    );
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
  const mix = `${frames.length} captured commits, ${k256} secp256k1 + ${frames.length - k256} P-256`;
  const referenceRate = await reference(frames, idResolver);
  const firstSight = await ours(frames, keys, "first sight");
  const hot = await ours(frames, keys, "hot");
  const before = await oursBefore(frames, keys);
  reportRates(`validation (${mix}, keys seen for the first time)`, firstSight, referenceRate);
  reportRates(`validation (${mix}, hot keys)`, hot, referenceRate);
  reportRates(
    `validation before (${mix}, noble, keys seen for the first time)`,
    before,
    referenceRate,
  );
  reportBeforeAfter(
    `validation (${mix}, keys seen for the first time, per CPU-second)`,
    before.cpu,
    firstSight.cpu,
    "events/s",
  );
  await breakdown(frames, keys);
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
      reportRates(
        `validation (${ops}-op generated commits, 3/4 secp256k1 + 1/4 P-256, keys seen for the first time)`,
        await ours(frames, keys, "first sight"),
        await reference(frames, idResolver),
      );
    }
  } finally {
    await plc.close();
  }
}

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const WORKERD_EVENTS = 6000;

/**
 * The captured mix validated inside workerd (bench/workers/validation-worker.ts under
 * `wrangler dev`), the relay's runtime: wall-clock events/s of one request on one thread.
 */
async function inWorkerd(): Promise<void> {
  const frames = loadCapturedFrames()
    .filter((c) => c.kind === "commit")
    .map((c) => Buffer.from(c.bytes).toString("base64"));
  const keys: Record<string, string> = {};
  for (const [did, doc] of Object.entries(loadDidDocuments())) {
    const key = parseDidDocument(doc).signingKey;
    if (key) keys[did] = formatDidKey(key);
  }
  // the bench worker answers only POSTs: any answer means it is up
  const relay = await startRelay({
    config: join(BENCH_DIR, "workers", "validation.wrangler.toml"),
    logLevel: "error",
    ready: (base) =>
      fetch(base).then(
        () => true,
        () => false,
      ),
  });
  const url = relay.url;
  try {
    for (const mode of ["first sight", "hot"] as const) {
      const res = await fetch(url, {
        method: "POST",
        body: JSON.stringify({ frames, keys, events: WORKERD_EVENTS, mode }),
      });
      if (!res.ok) throw new Error(`workerd bench failed: ${await res.text()}`);
      const { eventsPerSecond } = (await res.json()) as { eventsPerSecond: number };
      reportFigure(
        `validation in workerd (${frames.length} captured commits, ${mode === "hot" ? "hot keys" : "keys seen for the first time"})`,
        eventsPerSecond,
        "events/s",
        "wall clock, one thread of wrangler dev",
      );
    }
  } finally {
    await relay.stop();
  }
}

export default async function main(): Promise<void> {
  // as the relay runs (src/index.ts): JavaScript SHA-256 for small inputs, node:crypto for large
  installRelaySha256();
  // the goal is a rate on one core, for ours and the reference alike (cpu-placement.ts)
  console.log(`validation: this process ${pinThisProcess(true)} (BACKLOG_CPU, BACKLOG_PIN=0)`);
  await capturedFrames();
  await generatedFrames();
  // workerd's figure is one request on one thread, as before: its processes are not pinned
  pinThisProcess(false);
  await inWorkerd();
}
