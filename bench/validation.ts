import { IdResolver, MemoryCache } from "@atproto/identity";
import { parseCommitAuthenticated } from "@atproto/sync";
import { Frame } from "@atproto/xrpc-server";
import { verifyCommitSignature } from "../src/protocol/commit";
import { type PublicKey, parseDidKey } from "../src/protocol/did-key";
import { checkCommitEvent } from "../src/protocol/event-checks";
import { decodeFrame } from "../src/protocol/frame";
import { ScriptedPlc } from "../test/support/scripted-pds";
import { benchAccounts, opsPerSecond, opsPerSecondAsync } from "./fixtures";
import { reportRatio } from "./report";

// Decode + full verification of real commit frames, one core, with identities cached:
// ours (decodeFrame, checkCommitEvent: CAR/CID integrity and commit checks, signature against
// the cached #atproto key) against the path @atproto/sync's Firehose takes (frame decode, then
// parseCommitAuthenticated with a warm DID cache: CAR read, signature, MST proof of the ops).
export default async function main(): Promise<void> {
  const plc = new ScriptedPlc();
  await plc.start();
  try {
    for (const ops of [1, 10]) {
      const accounts = await benchAccounts(8, 12, ops);
      for (const a of accounts) plc.register(a.did, a.keyDid, "https://pds.invalid");
      const frames = accounts.flatMap((a) => a.commits.map((c) => c.frame));
      const keys = new Map<string, PublicKey>(accounts.map((a) => [a.did, parseDidKey(a.keyDid)]));

      let i = 0;
      const ours = opsPerSecond(() => {
        const frame = decodeFrame(frames[i++ % frames.length] as Uint8Array);
        if (frame.kind !== "commit") throw new Error("not a commit");
        const checked = checkCommitEvent(frame.body, Date.now());
        if (!verifyCommitSignature(checked.commit, keys.get(checked.did) as PublicKey))
          throw new Error("bad signature");
      }, 3000);

      const idResolver = new IdResolver({ plcUrl: plc.url, didCache: new MemoryCache() });
      for (const a of accounts) await idResolver.did.resolveAtprotoData(a.did);
      let j = 0;
      const reference = await opsPerSecondAsync(async () => {
        const frame = Frame.fromBytes(frames[j++ % frames.length] as Uint8Array);
        const evts = await parseCommitAuthenticated(idResolver, frame.body as never);
        if (evts.length === 0) throw new Error("reference rejected a valid commit");
      }, 3000);
      reportRatio(
        `validation (${ops}-op commits, 3/4 secp256k1 + 1/4 P-256)`,
        ours,
        reference,
        "events/s",
      );
    }
  } finally {
    await plc.close();
  }
}
