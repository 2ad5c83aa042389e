import type { Config } from "../config";
import type { Env } from "../env";
import { fanoutName, regionalPlace } from "../fanout/regions";
import type { ConsumerGroup } from "../status/summary";
import { fanoutStub } from "../stubs";

// The consumers of every Fanout, for the status page and /metrics: one request per Fanout asked
// (F: FANOUT_SHARDS when regions are off, else the region heads the Sequencer feeds and their
// shards with consumers, plus one per head to learn those).

function failure(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function consumerGroups(env: Env, fanouts: string[]): Promise<ConsumerGroup[]> {
  return Promise.all(
    [...fanouts].sort().map(async (name): Promise<ConsumerGroup> => {
      try {
        const s = await fanoutStub(env, name).stats();
        return {
          key: name,
          consumers: s.consumers,
          live: s.live,
          replaying: s.replaying,
          queuedReplays: s.queuedReplays,
        };
      } catch (err) {
        return {
          key: name,
          consumers: null,
          live: null,
          replaying: null,
          queuedReplays: null,
          error: failure(err),
        };
      }
    }),
  );
}

/**
 * The Fanouts to ask: every global shard subscribeRepos spreads consumers over (its naming), any
 * other the Sequencer feeds, and each region head's shards. Not only the Sequencer's list: it
 * forgets a Fanout that once answered "no consumers" until the Fanout's watchdog registers again.
 * Only names that exist are asked (asking a name would create its object).
 */
async function fanoutNames(env: Env, config: Config, registered: string[]): Promise<string[]> {
  const names = new Set(registered);
  if (config.fanoutRegions.length === 0)
    for (let shard = 0; shard < config.fanoutShards; shard++) names.add(fanoutName(null, shard));
  const heads = registered.filter((name) => regionalPlace(name)?.shard === 0);
  const shards = await Promise.allSettled(
    heads.map(async (head) => (await fanoutStub(env, head).describe()).shards),
  );
  for (const answer of shards)
    if (answer.status === "fulfilled") for (const name of answer.value) names.add(name);
  return [...names];
}

/** Each Fanout's consumers; `registered` is the Sequencer's list of the Fanouts it feeds. */
export async function fanoutConsumers(
  env: Env,
  config: Config,
  registered: string[],
): Promise<ConsumerGroup[]> {
  return consumerGroups(env, await fanoutNames(env, config, registered));
}
