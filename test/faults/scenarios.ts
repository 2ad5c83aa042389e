import type { FaultContext } from "./fault-run";

// Where a kill -9 lands. Each scenario brings the relay to a point (its trigger), then the
// kill comes after a delay drawn from the scenario's window with the iteration's seed. Writes
// on the PDS hosts go on through the kill, the downtime and the restart.

export type Scenario = {
  name: string;
  /** Relay settings on top of the suite's (fault-run.ts BASE_VARS). */
  vars?: Record<string, string>;
  /** Retention deletes the head of the log: compare only what is retained. */
  retainedOnly?: boolean;
  /** Brings the relay to the point the kill window is measured from. */
  trigger(ctx: FaultContext): Promise<void>;
  /** Kill this many ms after the trigger: uniform in [min, max). */
  killWindowMs: [number, number];
};

const SMALL_SEGMENTS = { SEGMENT_MAX_BYTES: "3000", SEGMENT_MAX_AGE_SECONDS: "1" };

export const SCENARIOS: Scenario[] = [
  {
    // the window: a host crawled, connected, nothing of it sequenced yet
    name: "after-crawl",
    async trigger(ctx) {
      void ctx.whenConnected().then(() => ctx.startWrites());
    },
    killWindowMs: [0, 2500],
  },
  {
    name: "first-frames",
    async trigger(ctx) {
      await ctx.whenConnected();
      ctx.startWrites();
    },
    killWindowMs: [0, 1500],
  },
  {
    name: "mid-batch",
    vars: { INGEST_BATCH_WINDOW_MS: "500" },
    async trigger(ctx) {
      await ctx.whenConnected();
      ctx.startWrites();
      await ctx.whenRelayHead(8);
    },
    killWindowMs: [0, 2000],
  },
  {
    name: "seal",
    vars: SMALL_SEGMENTS,
    async trigger(ctx) {
      await ctx.whenConnected();
      ctx.startWrites();
      await ctx.whenRelayHead(5);
    },
    killWindowMs: [0, 3000],
  },
  {
    name: "pin-hand-over",
    async trigger(ctx) {
      await ctx.whenConnected();
      ctx.startWrites();
      await ctx.whenRelayHead(8);
      const host = ctx.pick(ctx.hostnames);
      // sometimes the way back: pinned first, the kill lands in the unpin
      if (ctx.random() < 0.4) {
        await ctx.pin(host, true);
        await ctx.whenRelayHead((await ctx.relayHead()) + 5);
        void ctx.pin(host, false);
      } else {
        void ctx.pin(host, true);
      }
    },
    killWindowMs: [0, 1500],
  },
  {
    name: "consumers-replaying",
    async trigger(ctx) {
      await ctx.whenConnected();
      ctx.startWrites();
      await ctx.whenRelayHead(30);
      const head = await ctx.relayHead();
      for (let i = 0; i < 3; i++) ctx.addConsumer(Math.floor(ctx.random() * head));
    },
    killWindowMs: [0, 800],
  },
  {
    // retention runs in the Sequencer's maintenance alarm (every 30 s); with a replay window of
    // zero hours every sealed segment is expired by it
    name: "retention",
    vars: { ...SMALL_SEGMENTS, REPLAY_WINDOW_HOURS: "0" },
    retainedOnly: true,
    async trigger(ctx) {
      await ctx.whenConnected();
      ctx.startWrites();
      await new Promise((r) => setTimeout(r, 24_000));
    },
    killWindowMs: [0, 12_000],
  },
];

/** The short variant inside `npm test`: one kill point in each scenario but retention (slow). */
export const SHORT_SCENARIOS = [
  "after-crawl",
  "first-frames",
  "mid-batch",
  "seal",
  "pin-hand-over",
  "consumers-replaying",
];
