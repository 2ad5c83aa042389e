import type { Env } from "../env";
import { repoIndexShard } from "../ingest/partition";
import type { IdentityMoves } from "../ingest/validate";
import { hostDirectoryStub, repoIndexStub } from "../stubs";

// How validation spreads an account's migration across the relay (validate.ts, IdentityMoves):
// DID documents are cached per ingester object, so the object holding the account's old host
// must forget its copy when the new host's events show the move. The HostDirectory knows which
// object holds a host (pins, shards) and forwards one `invalidateIdentity` to it. Both calls
// happen once per migration, never per event.

export function identityMoves(env: Env, repoIndexShards: number): IdentityMoves {
  return {
    async previousHost(did) {
      const entry = await repoIndexStub(env, repoIndexShard(did, repoIndexShards)).getRepo(did);
      return entry?.host ?? null;
    },
    async moved(did, oldHost) {
      await hostDirectoryStub(env).identityMoved(did, oldHost);
    },
  };
}
