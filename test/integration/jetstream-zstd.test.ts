import { createDCtx, decompressUsingDict, init } from "@bokuweb/zstd-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { JETSTREAM_ZSTD_DICTIONARY } from "../../src/jetstream/zstd-dictionary";
import { requestCrawl } from "../support/relay-process";
import { type ScriptedRelay, startScriptedRelay } from "../support/scripted-relay";

// compress=true under `wrangler dev` (the Worker as deployed: libzstd's .wasm from the bundle):
// a compressing consumer gets binary messages that Jetstream's dictionary turns back into exactly
// the JSON a plain consumer of the same Fanout gets; two compressing consumers of one Fanout share
// each compressed message.

function consume(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(url, { headers });
  const received: (string | Uint8Array)[] = [];
  ws.on("message", (data, isBinary) => {
    received.push(isBinary ? new Uint8Array(data as Buffer) : (data as Buffer).toString("utf8"));
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.on("open", () => resolve());
    ws.on("error", reject);
  });
  return { ws, received, opened };
}

describe("Jetstream compress=true under wrangler dev", () => {
  let net: ScriptedRelay;

  beforeAll(async () => {
    net = await startScriptedRelay({ vars: { FANOUT_SHARDS: "1" } });
  });

  afterAll(async () => {
    await net?.close();
  });

  it("binary zstd frames decompress with Jetstream's dictionary into the plain consumer's JSON", async () => {
    const { host, relay } = net;
    const account = await host.addAccount();
    const plain = consume(`${relay.wsUrl}/subscribe?wantedDids=${account.did}`);
    const compressed = consume(`${relay.wsUrl}/subscribe?wantedDids=${account.did}&compress=true`);
    const byHeader = consume(`${relay.wsUrl}/subscribe?wantedDids=${account.did}`, {
      "Socket-Encoding": "zstd",
    });
    await Promise.all([plain.opened, compressed.opened, byHeader.opened]);
    expect((await requestCrawl(relay.url, host.hostname)).ok).toBe(true);
    for (let i = 0; i < 10; i++) host.push(await host.commitFrame(account));
    const deadline = Date.now() + 60_000;
    while (
      plain.received.length < 10 ||
      compressed.received.length < 10 ||
      byHeader.received.length < 10
    ) {
      if (Date.now() > deadline)
        throw new Error(`timed out: ${plain.received.length}, ${compressed.received.length}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 500));
    plain.ws.close();
    compressed.ws.close();
    byHeader.ws.close();

    expect(plain.received.every((m) => typeof m === "string")).toBe(true);
    await init();
    const dctx = createDCtx();
    const texts = compressed.received.map((frame) => {
      if (typeof frame === "string") throw new Error("a compressed consumer got a text message");
      return new TextDecoder().decode(decompressUsingDict(dctx, frame, JETSTREAM_ZSTD_DICTIONARY));
    });
    expect(texts).toEqual(plain.received);
    expect(byHeader.received).toEqual(compressed.received);
    expect(JSON.parse(texts[0] as string)).toMatchObject({ did: account.did, kind: "commit" });
  });
});
