import type { Env } from "./env";

// Every Durable Object's name is decided here, so that the Worker and the objects agree.

export function sequencerStub(env: Env) {
  return env.SEQUENCER.get(env.SEQUENCER.idFromName("sequencer"));
}

export function fanoutStub(env: Env, name: string) {
  return env.FANOUT.get(env.FANOUT.idFromName(name));
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
