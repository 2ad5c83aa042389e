import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { encodeFrame } from "../../src/protocol/frame";
import type { IngestEvent } from "../../src/sequence/hot-log";
import { sequencerStub } from "../../src/stubs";
import { subscribeJetstream } from "./support";

// Jetstream's time_us is the time the Sequencer sequenced the event (log/time-anchors.ts): one
// time per event, the same live, replayed from the hot log and replayed from a sealed segment,
// strictly increasing with seq across rows, seals, restarts and a wall clock behind the log; and
// a cursor starts exactly at the first event at or after it. Events are `#identity` frames (one
// Jetstream message each, carrying the relay's seq), each test with its own DID; the tests of
// this file share the log, in order.

let upstream = 1;

/**
 * `count` events from `host`. Batches appended concurrently need a host each: the Sequencer
 * takes one host's events in upstream order only, so of two batches of one host that arrive
 * swapped, the one with the lower upstream seqs is all duplicates.
 */
function identities(count: number, did: string, host = "time.test"): IngestEvent[] {
  return Array.from({ length: count }, () => {
    const seq = upstream++;
    const frame = encodeFrame({
      kind: "identity",
      body: { seq, did, time: "2024-05-01T00:00:00.000Z", handle: "time.test" },
    });
    return { host, upstreamSeq: seq, frame, did };
  });
}

/** Appends a batch; every event of it must be sequenced (the tests count on each). */
async function append(events: IngestEvent[]): Promise<void> {
  const result = await sequencerStub(env).appendBatch({ events });
  expect(result.accepted, "events sequenced").toBe(events.length);
}

/** Restarts the Sequencer, as an eviction or a deploy would. */
async function restartSequencer(): Promise<void> {
  await runInDurableObject(sequencerStub(env), (_instance, state) => {
    state.abort("restarted by the test");
  }).catch(() => {});
}

type Timed = { seq: number; timeUs: number };

async function subscribe(query: string) {
  const consumer = await subscribeJetstream(query, (m): Timed => {
    const message = m as {
      time_us: number;
      identity?: { seq: number };
      account?: { seq: number };
    };
    return { seq: (message.identity ?? message.account)?.seq as number, timeUs: message.time_us };
  });
  /**
   * Waits for `count` messages, then a little longer, so any extra one is seen too. Up to 15 s:
   * a delivery that fails is sent again within 0.5 + 1 + 2 + 4 s while its Fanout stays
   * unreachable (fanout/redelivery.ts, docs/behaviours.md), far below the watchdog's 30-60 s.
   */
  const waitFor = async (count: number) => {
    await consumer.waitFor((r) => r.length >= count, 15_000);
    await new Promise((r) => setTimeout(r, 300));
    return consumer.received;
  };
  return { ws: consumer.ws, received: consumer.received, waitFor };
}

function expectStrictlyIncreasing(events: Timed[]): void {
  for (let i = 1; i < events.length; i++) {
    const [previous, current] = [events[i - 1] as Timed, events[i] as Timed];
    expect(current.seq, `seq after ${previous.seq}`).toBeGreaterThan(previous.seq);
    expect(current.timeUs, `time of seq ${current.seq}`).toBeGreaterThan(previous.timeUs);
  }
}

async function sealedThrough(): Promise<number> {
  const page = await sequencerStub(env).listSegments(0, 1000);
  return page.sealedThrough;
}

describe("Jetstream time_us", () => {
  it("is the same live, replayed hot and replayed sealed, and strictly increases across rows, seals and a restart", async () => {
    const did = "did:plc:jetstreamtimesame00000000";
    const live = await subscribe(`wantedDids=${did}`);
    let total = 0;
    for (const size of [3, 1, 5]) {
      await append(identities(size, did));
      total += size;
    }
    // batches that arrive together, in any order: one group commit (one row), or a few
    await Promise.all([2, 4, 1].map((size, i) => append(identities(size, did, `time${i}.test`))));
    total += 7;
    await sequencerStub(env).sealNow();
    await restartSequencer();
    for (const size of [2, 6]) {
      await append(identities(size, did));
      total += size;
    }
    await live.waitFor(total);
    expect(live.received).toHaveLength(total);
    expectStrictlyIncreasing(live.received);
    const first = live.received[0] as Timed;
    expect(Math.abs(first.timeUs / 1000 - Date.now())).toBeLessThan(30_000);
    // the replay reads the first part from a segment and the rest from the hot log
    const sealed = await sealedThrough();
    expect(first.seq).toBeLessThanOrEqual(sealed);
    expect((live.received.at(-1) as Timed).seq).toBeGreaterThan(sealed);

    const hotReplay = await subscribe(`wantedDids=${did}&cursor=${first.timeUs}`);
    expect(await hotReplay.waitFor(total)).toEqual(live.received);
    await sequencerStub(env).sealNow();
    expect(await sealedThrough()).toBeGreaterThanOrEqual((live.received.at(-1) as Timed).seq);
    const sealedReplay = await subscribe(`wantedDids=${did}&cursor=${first.timeUs}`);
    expect(await sealedReplay.waitFor(total)).toEqual(live.received);
    for (const consumer of [live, hotReplay, sealedReplay]) consumer.ws.close();
  });

  it("a cursor starts at exactly the first event at or after it: inside a segment, inside a hot row, between them", async () => {
    const did = "did:plc:jetstreamtimecursor000000";
    const live = await subscribe(`wantedDids=${did}`);
    for (let i = 0; i < 3; i++) await append(identities(4, did));
    await sequencerStub(env).sealNow();
    await new Promise((r) => setTimeout(r, 5)); // a gap in time between the segment and the hot rows
    for (let i = 0; i < 3; i++) {
      await append(identities(5, did));
      await new Promise((r) => setTimeout(r, 5));
    }
    const events = await live.waitFor(27);
    expect(events).toHaveLength(27);
    const sealed = await sealedThrough();
    const inSegment = events.filter((e) => e.seq <= sealed);
    const hot = events.filter((e) => e.seq > sealed);
    expect(inSegment).toHaveLength(12);
    expect(hot).toHaveLength(15);

    // the seq before each event's time is the one before it; one µs later, the event itself
    const sequencer = sequencerStub(env);
    for (const event of events) {
      expect(await sequencer.jetstreamSeqBefore(event.timeUs), `at seq ${event.seq}`).toBe(
        event.seq - 1,
      );
      const after = await sequencer.jetstreamSeqBefore(event.timeUs + 1);
      if (event === events.at(-1)) expect(after).toBe(null);
      else expect(after, `after seq ${event.seq}`).toBe(event.seq);
    }

    const lastSealed = inSegment.at(-1) as Timed;
    const firstHot = hot[0] as Timed;
    expect(firstHot.timeUs - lastSealed.timeUs).toBeGreaterThan(1000);
    // an event in the middle of a hot row: its predecessor is 1 µs earlier
    const inHotRow = hot.find((e, i) => i > 0 && (hot[i - 1] as Timed).timeUs === e.timeUs - 1);
    expect(inHotRow).toBeDefined();
    const cases: [string, number, Timed][] = [
      ["inside a segment", (inSegment[5] as Timed).timeUs, inSegment[5] as Timed],
      ["1 µs after a sealed event", (inSegment[5] as Timed).timeUs + 1, inSegment[6] as Timed],
      ["between the segment and the hot rows", lastSealed.timeUs + 500, firstHot],
      ["inside a hot row", (inHotRow as Timed).timeUs, inHotRow as Timed],
    ];
    for (const [where, cursor, firstExpected] of cases) {
      const expected = events.filter((e) => e.seq >= firstExpected.seq);
      const consumer = await subscribe(`wantedDids=${did}&cursor=${cursor}`);
      expect(await consumer.waitFor(expected.length), where).toEqual(expected);
      expect(consumer.received.every((e) => e.timeUs >= cursor)).toBe(true);
      consumer.ws.close();
    }

    // reconnecting with the last time_us seen + 1: no repeat and no gap, then live
    const seen = hot[7] as Timed;
    const resumed = await subscribe(`wantedDids=${did}&cursor=${seen.timeUs + 1}`);
    const rest = events.filter((e) => e.seq > seen.seq);
    await resumed.waitFor(rest.length);
    await append(identities(2, did));
    await live.waitFor(29);
    expect(await resumed.waitFor(rest.length + 2)).toEqual(
      live.received.filter((e) => e.seq > seen.seq),
    );
    live.ws.close();
    resumed.ws.close();
  });

  it("segments and hot rows from before times were kept still replay, timed by estimate", async () => {
    const did = "did:plc:jetstreamtimelegacy000000";
    const live = await subscribe(`wantedDids=${did}`);
    for (let i = 0; i < 2; i++) await append(identities(3, did));
    await sequencerStub(env).sealNow();
    for (let i = 0; i < 2; i++) await append(identities(3, did));
    const events = await live.waitFor(12);
    const sealed = await sealedThrough();
    // the log as an older relay left it: no time columns (every segment and hot row so far)
    const segment = await runInDurableObject(sequencerStub(env), (_instance, state) => {
      const sql = state.storage.sql;
      // (the tables rebuilt with the first schema's columns, as hot-log.ts SCHEMA had them)
      sql.exec(`CREATE TABLE segments_v1 (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL,
                  first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, bytes INTEGER NOT NULL);
                INSERT INTO segments_v1 SELECT first_seq, last_seq, first_ms, last_ms, bytes FROM segments;
                DROP TABLE segments;
                ALTER TABLE segments_v1 RENAME TO segments;
                CREATE TABLE hot_log_v1 (
                  first_seq INTEGER PRIMARY KEY,
                  last_seq INTEGER NOT NULL,
                  created_ms INTEGER NOT NULL,
                  records BLOB NOT NULL,
                  -- JSON {host: last upstream seq} of the hosts whose events end in this row
                  cursors TEXT
                );
                INSERT INTO hot_log_v1
                  SELECT first_seq, last_seq, created_ms, records, cursors FROM hot_log;
                DROP TABLE hot_log;
                ALTER TABLE hot_log_v1 RENAME TO hot_log;`);
      return sql
        .exec<{ first_seq: number; last_seq: number; first_ms: number; last_ms: number }>(
          "SELECT first_seq, last_seq, first_ms, last_ms FROM segments WHERE last_seq = ?",
          sealed,
        )
        .toArray()[0];
    });
    if (!segment) throw new Error("no segment");
    await restartSequencer();

    const replay = await subscribe(`wantedDids=${did}&cursor=${(events[0] as Timed).timeUs}`);
    const replayed = await replay.waitFor(12);
    expect(replayed.map((e) => e.seq)).toEqual(events.map((e) => e.seq));
    const times = replayed.map((e) => e.timeUs);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    for (const event of replayed.filter((e) => e.seq <= sealed)) {
      expect(event.timeUs).toBeGreaterThanOrEqual(segment.first_ms * 1000);
      expect(event.timeUs).toBeLessThanOrEqual(segment.last_ms * 1000);
    }
    // a cursor inside an old segment starts at the segment
    expect(await sequencerStub(env).jetstreamSeqBefore(segment.last_ms * 1000)).toBe(
      segment.first_seq - 1,
    );
    // what is sequenced now is exact again, and after every older time
    await append(identities(2, did));
    const all = await replay.waitFor(14);
    expect(all).toHaveLength(14);
    const newer = all.slice(12);
    expect((newer[0] as Timed).timeUs).toBeGreaterThan(Math.max(...times));
    expect((newer[1] as Timed).timeUs).toBe((newer[0] as Timed).timeUs + 1);
    live.ws.close();
    replay.ws.close();
  });

  it("times go on after the last one stored when the wall clock is behind it", async () => {
    const did = "did:plc:jetstreamtimeclock0000000";
    await append(identities(3, did));
    // the newest row as a relay whose clock ran an hour ahead wrote it
    const aheadLastUs = await runInDurableObject(sequencerStub(env), (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec(
        `UPDATE hot_log SET first_us = ? + 3600000000
         WHERE first_seq = (SELECT MAX(first_seq) FROM hot_log)`,
        Date.now() * 1000,
      );
      const row = sql
        .exec<{ us: number }>(
          "SELECT first_us + last_seq - first_seq AS us FROM hot_log ORDER BY first_seq DESC LIMIT 1",
        )
        .toArray()[0];
      return row?.us as number;
    });
    await restartSequencer();
    await append(identities(2, did));
    await append(identities(2, did));
    const consumer = await subscribe(`wantedDids=${did}&cursor=${aheadLastUs + 1}`);
    const later = await consumer.waitFor(4);
    expect(later).toHaveLength(4);
    // two rows (two appends), both while the clock is behind the log: each starts 1 µs after the
    // last time, as when the clock stands still (test/core/jetstream-time.test.ts)
    expect(later.map((e) => e.timeUs)).toEqual([1, 2, 3, 4].map((n) => aheadLastUs + n));
    expectStrictlyIncreasing(later);
    consumer.ws.close();
  });
});
