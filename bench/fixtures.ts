import { P256Keypair, Secp256k1Keypair } from "@atproto/crypto";
import { type ReferenceCommit, referenceCommits } from "../test/support/reference-frames";

// Deterministic inputs for the benchmarks: real commits made by the reference implementation
// (@atproto/repo), one-op and ten-op, for accounts signing with secp256k1 (most of the network)
// and P-256.

export type BenchAccount = { did: string; keyDid: string; commits: ReferenceCommit[] };

export async function benchAccounts(
  accounts: number,
  commitsPerAccount: number,
  opsPerCommit = 1,
): Promise<BenchAccount[]> {
  const out: BenchAccount[] = [];
  for (let i = 0; i < accounts; i++) {
    const keypair = i % 4 === 3 ? await P256Keypair.create() : await Secp256k1Keypair.create();
    const did = `did:plc:bench${String(i).padStart(6, "0")}aaaaaaaaaaaaa`;
    out.push({
      did,
      keyDid: keypair.did(),
      commits: await referenceCommits(did, keypair, commitsPerAccount, opsPerCommit),
    });
  }
  return out;
}

/** Runs `fn` repeatedly for about `ms` and returns operations per second. */
export function opsPerSecond(fn: () => void, ms = 1500): number {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    fn();
    n++;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

export async function opsPerSecondAsync(fn: () => Promise<void>, ms = 1500): Promise<number> {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    await fn();
    n++;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}
