import type { FanoutView } from "../fanout/fanout";
import { regionalPlace } from "../fanout/regions";
import { fanoutStub, sequencerStub } from "../stubs";
import { json } from "./errors";
import { requireMethod, type XrpcHandler } from "./params";

// GET /admin/fanout: every Fanout with consumers, by region. The Sequencer knows the Fanouts it
// feeds (global shards and region heads); each head knows its region's shards with consumers.
// So only Fanouts that exist are asked (asking a name would create its object).

type ShardView = Omit<FanoutView, "cursors" | "shards" | "name"> & {
  name: string;
  shard: number | null;
  head: boolean;
  /** Per consumer: the last seq sent, whether it is live, and how far behind the head it is. */
  consumerCursors: { cursor: number; live: boolean; lag: number }[];
};

const GLOBAL_SHARD = /^fanout-(\d+)$/;

function shardView(name: string, view: FanoutView, headSeq: number): ShardView {
  const { cursors, shards: _shards, name: _name, ...stats } = view;
  const place = regionalPlace(name);
  const global = GLOBAL_SHARD.exec(name);
  return {
    name,
    shard: place ? place.shard : global ? Number(global[1]) : null,
    head: place?.shard === 0,
    ...stats,
    consumerCursors: cursors.map((c) => ({ ...c, lag: Math.max(0, headSeq - c.cursor) })),
  };
}

export const listFanouts: XrpcHandler = async (request, env, config) => {
  requireMethod(request, "GET");
  const sequencer = sequencerStub(env);
  const [fed, state] = await Promise.all([sequencer.listFanouts(), sequencer.getLogState()]);
  const views = new Map<string, FanoutView>();
  await Promise.all(
    fed.map(async (name) => {
      const view = await fanoutStub(env, name).describe();
      views.set(name, view);
      await Promise.all(
        view.shards.map(async (shard) => views.set(shard, await fanoutStub(env, shard).describe())),
      );
    }),
  );
  const byRegion = new Map<string, ShardView[]>();
  for (const [name, view] of views) {
    const region = regionalPlace(name)?.region ?? "global";
    const list = byRegion.get(region) ?? [];
    list.push(shardView(name, view, state.headSeq));
    byRegion.set(region, list);
  }
  const regions = [...byRegion]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([region, shards]) => {
      shards.sort((a, b) => (a.shard ?? 0) - (b.shard ?? 0) || a.name.localeCompare(b.name));
      return {
        region,
        consumers: shards.reduce((sum, s) => sum + s.consumers, 0),
        shards,
      };
    });
  return json({
    headSeq: state.headSeq,
    enabledRegions: config.fanoutRegions,
    shardsPerRegion: config.fanoutShards,
    regions,
  });
};
