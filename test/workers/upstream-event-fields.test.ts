import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { iterateRecords } from "../../src/log/records";
import { decodeTrailer, TRAILER_BYTES } from "../../src/log/segment";
import { decodeFrame } from "../../src/protocol/frame";
import { sequencerStub } from "../../src/stubs";
import { crawl, ingester, newHost, push, sequencedThrough, until } from "./ingest-support";

// A host that really is its account's PDS still cannot make the relay carry what the lexicon
// does not define (issue 10, items 5 and 7): an #identity or #account padded with megabytes is
// dropped as TooBig before its body is decoded (and never stalls the shard), and events whose
// `time`, `handle` or `status` break the lexicon's formats are dropped as InvalidSyntax.

/** Every relayed frame about `did`, as [kind, frame bytes]. */
async function relayedFrames(did: string): Promise<[string, number][]> {
  const out: [string, number][] = [];
  let after = 0;
  for (;;) {
    const read = await sequencerStub(env).readLog(after, 8_000_000);
    let records: Uint8Array;
    if (read.kind === "hot") records = read.records;
    else if (read.kind === "segment") {
      const bytes = new Uint8Array(await (await env.EVENT_LOG.get(read.key))!.arrayBuffer());
      records = bytes.subarray(
        0,
        decodeTrailer(bytes.subarray(bytes.byteLength - TRAILER_BYTES)).indexOffset,
      );
    } else break;
    for (const record of iterateRecords(records)) {
      if (record.seq <= after) continue;
      after = record.seq;
      const frame = decodeFrame(record.frame);
      if (frame.kind === "info" || frame.kind === "error") continue;
      const about = frame.kind === "commit" ? frame.body.repo : frame.body.did;
      if (about === did) out.push([frame.kind, record.frame.byteLength]);
    }
  }
  return out;
}

async function script(hostname: string, call: string): Promise<number> {
  const res = await fetch(`http://${hostname}/_script/${call}`, { method: "POST" });
  expect(res.status).toBe(200);
  return ((await res.json()) as { seq: number }).seq;
}

describe("fields of upstream events", () => {
  it("drops padded and malformed #identity/#account events, counts why, and keeps the host flowing", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    await push(host, 1);
    await script(host.hostname, "identity?padding=3000000");
    await script(host.hostname, "account?padding=3000000");
    await script(host.hostname, "identity?time=yesterday");
    await script(host.hostname, "identity?handle=not%20a%20handle");
    await script(host.hostname, "account?active=false&status=taken%20down");
    const good = await script(host.hostname, "identity?handle=alice.test");
    const [last] = await push(host, 1);
    await sequencedThrough(host.hostname, last!);

    const report = await until(
      "the drops to be counted",
      () => ingester(host.hostname).getHost(host.hostname),
      (r) => (r?.counters.accepted ?? 0) >= 3,
    );
    expect(report?.counters.dropped).toEqual({
      "InvalidEvent:TooBig": 2,
      "InvalidEvent:InvalidSyntax": 3,
    });
    const relayed = await relayedFrames(host.did);
    expect(relayed.map(([kind]) => kind)).toEqual(["commit", "identity", "commit"]);
    expect(Math.max(...relayed.map(([, bytes]) => bytes))).toBeLessThan(10_000);
    expect(good).toBeLessThan(last!);
  });

  it("forwards an event without the fields the lexicon does not define", async () => {
    const host = await newHost();
    expect((await crawl(host.hostname)).status).toBe(200);
    await push(host, 1);
    const seq = await script(host.hostname, "identity?handle=alice.test&padding=4000");
    await sequencedThrough(host.hostname, seq);
    const relayed = await relayedFrames(host.did);
    expect(relayed.map(([kind]) => kind)).toEqual(["commit", "identity"]);
    expect(relayed[1]![1]).toBeLessThan(200);
  });
});
