// Which HostIngester object carries a host. Pinned hosts (large ones, chosen by an admin) get an
// object of their own; every other host shares one of `shards` objects picked by a stable hash
// of its name, so the number of objects that can hold sockets stays bounded. This is the only
// place the rule lives: the Worker, the admin and the directory all call it.

/** FNV-1a, 32-bit: stable across runtimes and deploys (unlike anything seeded). */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

export function ingesterObjectName(hostname: string, pinned: boolean, shards: number): string {
  return pinned ? `host:${hostname}` : `shard:${fnv1a(hostname) % Math.max(1, shards)}`;
}

/** Whether `name` is one `ingesterObjectName` gives (a directory entry's `ingester` may be ""). */
export function isIngesterObjectName(name: string): boolean {
  return /^(host|shard):./.test(name);
}

/** The RepoIndex shard of a DID: lookups spread over shards instead of one object. */
export function repoIndexShard(did: string, shards: number): number {
  return fnv1a(did) % Math.max(1, shards);
}
