import { env, SELF } from "cloudflare:test";
import { inject } from "vitest";
import { readConfig } from "../../src/config";
import { ingesterObjectName } from "../../src/ingest/partition";
import { iterateRecords } from "../../src/log/records";
import { decodeTrailer, TRAILER_BYTES } from "../../src/log/segment";
import { decodeFrame } from "../../src/protocol/frame";
import { hostIngesterStub, sequencerStub } from "../../src/stubs";
import { RELAY } from "./support";

// Helpers for HostIngester tests against the scripted upstreams (test/support/scripted-pds.ts,
// driven over test/support/upstream-control.ts).

const control = inject("upstreamControlUrl");

export type Host = { id: string; hostname: string; did: string };

export async function newHost(): Promise<Host> {
  return (await (await fetch(`${control}/pds`, { method: "POST" })).json()) as Host;
}

export async function crawl(hostname: string): Promise<Response> {
  return SELF.fetch(`${RELAY}/xrpc/com.atproto.sync.requestCrawl`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ hostname }),
  });
}

export function ingester(hostname: string) {
  return hostIngesterStub(env, ingesterObjectName(hostname, false, readConfig(env).ingestShards));
}

export async function until<T>(
  what: string,
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every relayed commit of `did`, in relay order, as [relay seq, rev]. */
export async function relayedCommits(did: string): Promise<[number, string][]> {
  const out: [number, string][] = [];
  let after = 0;
  for (;;) {
    const read = await sequencerStub(env).readLog(after, 4_000_000);
    let records: Uint8Array;
    if (read.kind === "hot") {
      records = read.records;
    } else if (read.kind === "segment") {
      const bytes = new Uint8Array(await (await env.EVENT_LOG.get(read.key))!.arrayBuffer());
      records = bytes.subarray(
        0,
        decodeTrailer(bytes.subarray(bytes.byteLength - TRAILER_BYTES)).indexOffset,
      );
    } else {
      break;
    }
    for (const record of iterateRecords(records)) {
      if (record.seq <= after) continue;
      const frame = decodeFrame(record.frame);
      if (frame.kind === "commit" && frame.body.repo === did)
        out.push([record.seq, frame.body.rev]);
      after = record.seq;
    }
  }
  return out;
}

/** Makes the host emit `count` valid commits (records `padding` bytes longer); their seqs. */
export async function push(host: Host, count: number, padding = 0): Promise<number[]> {
  const res = await fetch(`${control}/pds/${host.id}/good?count=${count}&padding=${padding}`, {
    method: "POST",
  });
  return ((await res.json()) as { seqs: number[] }).seqs;
}

/** Makes the host send its frame `seq` again under a new seq (an old rev replayed). */
export async function repeat(host: Host, seq: number): Promise<number> {
  const res = await fetch(`${control}/pds/${host.id}/repeat?seq=${seq}`, { method: "POST" });
  return ((await res.json()) as { seq: number }).seq;
}

/** Makes the host emit an #account {active: true} of its account; returns its seq. */
export async function pushAccount(host: Host): Promise<number> {
  const res = await fetch(`${control}/pds/${host.id}/account`, { method: "POST" });
  return ((await res.json()) as { seq: number }).seq;
}

/** Cuts the relay's connection to the host, as a network blip would. */
export async function dropConnections(host: Host): Promise<void> {
  await fetch(`${control}/pds/${host.id}/drop`, { method: "POST" });
}

export async function upstreamState(
  host: Host,
): Promise<{ frames: number; subscribers: number; subscriptions: number }> {
  return (await (await fetch(`${control}/pds/${host.id}`)).json()) as {
    frames: number;
    subscribers: number;
    /** subscribeRepos sockets the host accepted so far */
    subscriptions: number;
  };
}

export async function sequencedThrough(
  hostname: string,
  upstreamSeq: number,
  timeoutMs = 20_000,
): Promise<void> {
  await until(
    `${hostname} sequenced through ${upstreamSeq}`,
    async () => {
      await ingester(hostname).flush();
      return sequencerStub(env).getHostCursor(hostname);
    },
    (cursor) => (cursor ?? 0) >= upstreamSeq,
    timeoutMs,
  );
}
