import type { Account, PdsNetwork } from "./pds-network";

// A steady, realistic and deterministic (seeded) mix of what people do on atproto: posts,
// replies, likes, follows, deletions, now and then a handle change, and an account that
// deactivates and comes back. Everything goes through the reference PDS's own API.

export type ActivityCounts = Record<ActivityKind, number>;
export type ActivityKind =
  | "post"
  | "reply"
  | "like"
  | "follow"
  | "delete"
  | "handle"
  | "deactivate";

/**
 * The run stops at the first of `actions`, `durationMs` or `signal`; at least one is required.
 * The same seed gives the same sequence of actions (the PDS's own timestamps and keys differ).
 */
export type ActivityOptions = {
  seed: number;
  /** Number of actions; each is one write on one PDS (two for deactivate + reactivate). */
  actions?: number;
  durationMs?: number;
  signal?: AbortSignal;
  /** Steady pace; without it, as fast as the PDS takes them. */
  eventsPerSecond?: number;
  /** Pause after every action, on top of any pacing. */
  pauseMs?: number;
  /** Allow the rare actions (handle change, deactivate/reactivate). */
  rare?: boolean;
};

/** mulberry32: small, fast, good enough to make runs repeatable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Post = { uri: string; cid: string; author: Account };

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export async function runActivity(
  network: PdsNetwork,
  options: ActivityOptions,
): Promise<ActivityCounts> {
  const random = seededRandom(options.seed);
  const accounts = network.hosts.flatMap((h) => h.accounts);
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)] as T;
  const counts: ActivityCounts = {
    post: 0,
    reply: 0,
    like: 0,
    follow: 0,
    delete: 0,
    handle: 0,
    deactivate: 0,
  };
  if (options.actions === undefined && options.durationMs === undefined && !options.signal)
    throw new Error("runActivity needs actions, durationMs or signal to know when to stop");
  const posts: Post[] = [];
  let handleChanges = 0;
  const started = Date.now();
  const intervalMs = options.eventsPerSecond ? 1000 / options.eventsPerSecond : 0;
  const deadline = options.durationMs === undefined ? Infinity : started + options.durationMs;
  for (let i = 0; i < (options.actions ?? Infinity); i++) {
    await sleep(started + i * intervalMs - Date.now(), options.signal);
    if (options.signal?.aborted || Date.now() >= deadline) break;
    const actor = pick(accounts);
    const roll = random();
    if (posts.length === 0 || roll < 0.35) {
      const res = await actor.agent.post({
        text: `post ${i} by ${actor.handle}`,
        createdAt: new Date().toISOString(),
      });
      posts.push({ uri: res.uri, cid: res.cid, author: actor });
      counts.post++;
    } else if (roll < 0.5) {
      const parent = pick(posts);
      const ref = { uri: parent.uri, cid: parent.cid };
      const res = await actor.agent.post({
        text: `reply ${i}`,
        reply: { root: ref, parent: ref },
        createdAt: new Date().toISOString(),
      });
      posts.push({ uri: res.uri, cid: res.cid, author: actor });
      counts.reply++;
    } else if (roll < 0.75) {
      const post = pick(posts);
      await actor.agent.like(post.uri, post.cid);
      counts.like++;
    } else if (roll < 0.88) {
      await actor.agent.follow(pick(accounts).did);
      counts.follow++;
    } else if (roll < 0.96 || !options.rare) {
      const mine = posts.filter((p) => p.author === actor);
      if (mine.length === 0) continue;
      const post = mine[Math.floor(random() * mine.length)] as Post;
      await actor.agent.deletePost(post.uri);
      posts.splice(posts.indexOf(post), 1);
      counts.delete++;
    } else if (roll < 0.98) {
      handleChanges++;
      const base = actor.handle.split(".")[0]?.replace(/-\d+$/, "");
      actor.handle = `${base}-${handleChanges}.test`;
      await actor.agent.com.atproto.identity.updateHandle({ handle: actor.handle });
      counts.handle++;
    } else {
      await actor.agent.com.atproto.server.deactivateAccount({});
      await new Promise((r) => setTimeout(r, 50));
      await actor.agent.com.atproto.server.activateAccount();
      counts.deactivate++;
    }
    if (options.pauseMs) await sleep(options.pauseMs, options.signal);
  }
  return counts;
}
