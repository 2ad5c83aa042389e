// A Bloom filter over string keys, so that a lookup of a key a sorted run does not hold reads
// none of the run's chunks (packed-store.ts). 10 bits per key and 7 hashes give ~1 % false
// positives (m/n = 10, k = ln 2 · m/n ≈ 7).

export const BLOOM_BITS_PER_KEY = 10;
const HASHES = 7;

export type Bloom = { bits: Uint8Array; hashes: number };

export function newBloom(expectedKeys: number): Bloom {
  const bits = Math.max(64, Math.ceil(expectedKeys * BLOOM_BITS_PER_KEY));
  return { bits: new Uint8Array(Math.ceil(bits / 8)), hashes: HASHES };
}

export function bloomAdd(bloom: Bloom, key: string): void {
  const m = bloom.bits.length * 8;
  const [h1, h2] = hashPair(key);
  for (let i = 0; i < bloom.hashes; i++) {
    const bit = (h1 + Math.imul(i, h2)) >>> 0;
    const at = bit % m;
    bloom.bits[at >>> 3]! |= 1 << (at & 7);
  }
}

/** False only if the key was never added. */
export function bloomMayHave(bloom: Bloom, key: string): boolean {
  const m = bloom.bits.length * 8;
  const [h1, h2] = hashPair(key);
  for (let i = 0; i < bloom.hashes; i++) {
    const at = ((h1 + Math.imul(i, h2)) >>> 0) % m;
    if ((bloom.bits[at >>> 3]! & (1 << (at & 7))) === 0) return false;
  }
  return true;
}

// Two independent 32-bit hashes (FNV-1a with two offset bases, then a murmur3 finalizer);
// the i-th probe is h1 + i·h2 (Kirsch and Mitzenmacher, "Less hashing, same performance").
function hashPair(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return [fmix(a), fmix(b) | 1];
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
