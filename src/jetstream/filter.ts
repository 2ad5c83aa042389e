import type { JetstreamOptions } from "./options";

// A consumer's options as a matcher, built once per options change and asked once per event (or
// op): a Set lookup per DID and per exact collection, a short scan only for prefix patterns.
// Jetstream's rules: wantedDids applies to every kind; wantedCollections only to commit ops, so
// #identity and #account events reach every consumer whose DID filter lets them through (they
// are how a collection-scoped consumer learns an account is gone).

export class JetstreamFilter {
  readonly #dids: Set<string> | null;
  readonly #exact: Set<string> | null;
  readonly #prefixes: readonly string[];
  readonly maxMessageSizeBytes: number;

  constructor(options: JetstreamOptions) {
    this.#dids = options.wantedDids ? new Set(options.wantedDids) : null;
    this.#exact = options.wantedCollections ? new Set(options.wantedCollections.exact) : null;
    this.#prefixes = options.wantedCollections?.prefixes ?? [];
    this.maxMessageSizeBytes = options.maxMessageSizeBytes;
  }

  wantsDid(did: string): boolean {
    return this.#dids === null || this.#dids.has(did);
  }

  /** Only for commit ops. An empty collection passes, as in Jetstream. */
  wantsCollection(collection: string): boolean {
    if (this.#exact === null || collection === "" || this.#exact.has(collection)) return true;
    for (const prefix of this.#prefixes) if (collection.startsWith(prefix)) return true;
    return false;
  }

  /** A message of `bytes` UTF-8 bytes may be sent. */
  fits(bytes: number): boolean {
    return this.maxMessageSizeBytes === 0 || bytes <= this.maxMessageSizeBytes;
  }
}
