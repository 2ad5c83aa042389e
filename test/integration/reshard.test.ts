import { afterAll, describe, expect, it } from "vitest";
import { ingesterObjectName } from "../../src/ingest/partition";
import { checkRelayLog } from "../support/backlog-scenario";
import { type RelayProcess, requestCrawl, startRelay } from "../support/relay-process";
import { type Account, ScriptedPds, ScriptedPlc } from "../support/scripted-pds";

// INGEST_SHARDS changed on a running relay (4, then 2, then 1), with the relay stopped and
// started again on the same state each time and the hosts writing while it is down. A host the
// partition rule now maps to another shard moves by hand-over: by requestCrawl for some (the
// Worker releases it from the object that held it), by the old object's watchdog for the
// others. Every event arrives once in each account's order, each host ends with one upstream
// socket, and the new object validates with the accounts' state: the first event after each
// move repeats the account's last rev, which only that state can drop, and no continuity flag
// is raised.

const ADMIN = "reshard-test-token";

type Entry = { hostname: string; ingester: string; counters: { dropped: Record<string, number> } };

describe("changing INGEST_SHARDS on a running relay", () => {
  const plc = new ScriptedPlc();
  const hosts: ScriptedPds[] = [];
  let relay: RelayProcess | undefined;

  afterAll(async () => {
    await relay?.stop();
    for (const host of hosts) await host.close();
    await plc.close();
  });

  async function start(shards: number, persistDir?: string): Promise<RelayProcess> {
    return startRelay({
      plcUrl: plc.url,
      logLevel: "log",
      ...(persistDir ? { persistDir } : {}),
      vars: {
        ADMIN_TOKEN: ADMIN,
        INGEST_SHARDS: String(shards),
        NEW_HOST_EVENTS_PER_SECOND: "100000",
        AUTO_PIN_EVENTS_PER_SECOND: "0",
        HOST_REPORT_INTERVAL_SECONDS: "2",
      },
    });
  }

  async function head(r: RelayProcess): Promise<number> {
    return ((await (await fetch(`${r.url}/xrpc/_health`)).json()) as { seq: number }).seq ?? 0;
  }

  async function entries(r: RelayProcess): Promise<Entry[]> {
    const res = await fetch(`${r.url}/admin/hosts?limit=100`, {
      headers: { Authorization: `Bearer ${ADMIN}` },
    });
    return ((await res.json()) as { hosts: Entry[] }).hosts;
  }

  /** Waits until every host is held by the object the rule names, on one socket, all sequenced. */
  async function settled(r: RelayProcess, shards: number, expectedHead: number): Promise<void> {
    let last: unknown = null;
    const ok = async () => {
      const listed = await entries(r);
      const placed = hosts.every(
        (h) =>
          listed.find((e) => e.hostname === h.hostname)?.ingester ===
          ingesterObjectName(h.hostname, false, shards),
      );
      const sockets = hosts.map((h) => h.sockets.size);
      const seq = await head(r);
      last = { placed, sockets, seq, expectedHead, listed: listed.map((e) => e.ingester) };
      return placed && sockets.every((n) => n === 1) && seq >= expectedHead;
    };
    let done = false;
    const deadline = Date.now() + 60_000;
    while (!done && Date.now() < deadline) {
      done = await ok();
      if (!done) await new Promise((res) => setTimeout(res, 500));
    }
    expect(done, `not settled at ${shards} shards: ${JSON.stringify(last)}`).toBe(true);
  }

  it("hosts move to their new shard by hand-over, and every event arrives exactly once, in order", async () => {
    await plc.start();
    // one host on each of the four shards, so 4 -> 2 moves two of them and 2 -> 1 moves two
    // (one of which moves twice: its quiet account's state is two objects back)
    const byShard = new Map<number, ScriptedPds>();
    const spare: ScriptedPds[] = [];
    while (byShard.size < 4) {
      const host = new ScriptedPds(plc);
      await host.start();
      const shard = Number(ingesterObjectName(host.hostname, false, 4).slice("shard:".length));
      if (byShard.has(shard)) spare.push(host);
      else byShard.set(shard, host);
    }
    for (const host of spare) await host.close();
    for (let s = 0; s < 4; s++) hosts.push(byShard.get(s) as ScriptedPds);
    // per host: a busy account that writes in every phase, a quiet one only in the first and last
    const busy: Account[] = [];
    const quiet: Account[] = [];
    for (const host of hosts) {
      busy.push(await host.addAccount());
      quiet.push(await host.addAccount());
    }
    let sequenced = 0;
    let repeats = 0;
    const write = async (host: ScriptedPds, account: Account, count: number) => {
      for (let i = 0; i < count; i++) host.push(await host.commitFrame(account));
      sequenced += count;
    };
    // the first event after a move repeats the account's last rev: dropped only with its state
    const repeatLast = async (host: ScriptedPds, account: Account) => {
      host.push(await host.commitFrame(account, { rev: account.lastRev as string }));
      repeats++;
    };

    relay = await start(4);
    for (const host of hosts) expect((await requestCrawl(relay.url, host.hostname)).ok).toBe(true);
    for (const [i, host] of hosts.entries()) {
      await write(host, busy[i] as Account, 5);
      await write(host, quiet[i] as Account, 3);
    }
    await settled(relay, 4, sequenced);

    for (const [shards, quietWrites] of [
      [2, false],
      [1, true],
    ] as const) {
      const persistDir = relay.persistDir;
      await relay.stop();
      // written while the relay is down
      for (const [i, host] of hosts.entries()) {
        await repeatLast(host, busy[i] as Account);
        await write(host, busy[i] as Account, 4);
        if (quietWrites) {
          await repeatLast(host, quiet[i] as Account);
          await write(host, quiet[i] as Account, 2);
        }
      }
      relay = await start(shards, persistDir);
      // hosts that move and ping the relay are handed over by the Worker; the others that move
      // wait for their old object's watchdog
      for (const [s, host] of hosts.entries()) {
        const moves =
          ingesterObjectName(host.hostname, false, shards) !== `shard:${s % (shards * 2)}`;
        const byWatchdog = s === 3;
        if (!(moves && byWatchdog))
          expect((await requestCrawl(relay.url, host.hostname)).ok).toBe(true);
      }
      // and keep writing once it is back
      for (const [i, host] of hosts.entries()) await write(host, busy[i] as Account, 2);
      await settled(relay, shards, sequenced);
    }

    const output = relay.output();
    expect(output).toContain("host moved: the partition rule names another object");
    expect(output).not.toContain("repo continuity mismatch");
    // counters reach the directory with the ingesters' next report
    const current = relay;
    let revRepeatsDropped = 0;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
      revRepeatsDropped = (await entries(current)).reduce(
        (n, e) => n + (e.counters.dropped.RevNotIncreasing ?? 0),
        0,
      );
      if (revRepeatsDropped === repeats) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    expect(revRepeatsDropped).toBe(repeats);
    expect(await head(relay)).toBe(sequenced);
    expect(await checkRelayLog(relay.wsUrl, hosts)).toEqual({
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      seqGaps: 0,
    });
  });
});
