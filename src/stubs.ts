import type { Env } from "./env";
import { regionalPlace } from "./fanout/regions";

// Every Durable Object's name is decided here, so that the Worker and the objects agree.

export function sequencerStub(env: Env) {
  return env.SEQUENCER.get(env.SEQUENCER.idFromName("sequencer"));
}

/**
 * A Fanout by name. A regional shard is created near its consumers (`locationHint`, honoured
 * only when the object is first created); global shards are created wherever first used.
 */
export function fanoutStub(env: Env, name: string) {
  const region = regionalPlace(name)?.region;
  const id = env.FANOUT.idFromName(name);
  return region ? env.FANOUT.get(id, { locationHint: region }) : env.FANOUT.get(id);
}

export function hostDirectoryStub(env: Env) {
  return env.HOST_DIRECTORY.get(env.HOST_DIRECTORY.idFromName("host-directory"));
}

export function hostIngesterStub(env: Env, objectName: string) {
  return env.HOST_INGESTER.get(env.HOST_INGESTER.idFromName(objectName));
}

export function repoIndexStub(env: Env, shard: number) {
  return env.REPO_INDEX.get(env.REPO_INDEX.idFromName(`repo-index-${shard}`));
}
