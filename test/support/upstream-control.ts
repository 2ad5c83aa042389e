import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Secp256k1Keypair } from "@atproto/crypto";
import { encodeFrame } from "../../src/protocol/frame";
import { rewriteFrameSeq } from "../../src/protocol/seq-rewrite";
import { ScriptedPds, type ScriptedPlc } from "./scripted-pds";

// An HTTP control API over scripted upstreams, so tests running inside workerd can create hosts
// and make them emit frames (workerd reaches Node servers on loopback).
//   POST /pds                  -> { id, hostname, did }   a host with one account
//   POST /pds/:id/good?count=N[&padding=B] -> { seqs }    N valid commits (records B bytes longer)
//   POST /pds/:id/hostile      -> { goodSeqs, drops }     the hostile script (see below)
//   POST /pds/:id/account      -> { seq }              an #account {active: true} of its account
//   POST /pds/:id/drop         -> cuts the subscribers' connections (the host stays up)
//   POST /pds/:id/repeat?seq=N -> { seq }              frame N sent again under a new seq
//   POST /pds/:id/reset        -> the host forgets its frames (its seq restarts at 1)
//   GET  /pds/:id              -> { frames, subscribers, subscriptions }

export async function startUpstreamControl(
  plc: ScriptedPlc,
): Promise<{ url: string; close(): Promise<void> }> {
  const hosts = new Map<string, ScriptedPds>();
  const outsider = new ScriptedPds(plc);
  await outsider.start();
  const stranger = await outsider.addAccount();

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://x");
      const parts = url.pathname.split("/").filter(Boolean);
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
      };
      try {
        if (req.method === "POST" && parts.length === 1 && parts[0] === "pds") {
          const pds = new ScriptedPds(plc);
          await pds.start();
          const account = await pds.addAccount();
          const id = String(hosts.size + 1);
          hosts.set(id, pds);
          return reply(200, { id, hostname: pds.hostname, did: account.did });
        }
        const pds = hosts.get(parts[1] ?? "");
        if (!pds) return reply(404, { error: "no such pds" });
        const account = pds.accounts[0]!;
        if (req.method === "GET" && parts.length === 2) {
          return reply(200, {
            frames: pds.frames.length,
            subscribers: pds.sockets.size,
            subscriptions: pds.subscriptions,
          });
        }
        if (req.method === "POST" && parts[2] === "good") {
          return reply(200, {
            seqs: await pds.pushGood(
              account,
              Number(url.searchParams.get("count") ?? "1"),
              Number(url.searchParams.get("padding") ?? "0"),
            ),
          });
        }
        if (req.method === "POST" && parts[2] === "account") {
          // an #account event of the host's account, as a PDS emits for a new account
          const seq = pds.push((n) =>
            encodeFrame({
              kind: "account",
              body: { seq: n, did: account.did, time: new Date().toISOString(), active: true },
            }),
          );
          return reply(200, { seq });
        }
        if (req.method === "POST" && parts[2] === "drop") {
          // cuts every subscriber's connection, as a network blip or a PDS restart would
          for (const ws of pds.sockets) ws.terminate();
          return reply(200, { dropped: true });
        }
        if (req.method === "POST" && parts[2] === "repeat") {
          // sends an old frame again under a new seq: a replayed older rev
          const old = pds.frames[Number(url.searchParams.get("seq")) - 1];
          if (!old) return reply(404, { error: "no such frame" });
          return reply(200, { seq: pds.push((seq) => rewriteFrameSeq(old, seq)) });
        }
        if (req.method === "POST" && parts[2] === "reset") {
          pds.resetSequence();
          return reply(200, { frames: 0 });
        }
        if (req.method === "POST" && parts[2] === "hostile") {
          const goodSeqs: number[] = [];
          goodSeqs.push(pds.push(await pds.commitFrame(account)));
          const forger = await Secp256k1Keypair.create();
          pds.push(await pds.commitFrame(account, { signer: forger }));
          // an account whose DID document names another PDS
          pds.push(await pds.commitFrame(stranger));
          // a rev before the last one accepted
          pds.push(await pds.commitFrame(account, { rev: "2222222222222" }));
          // truncated CBOR: a map of two entries that ends after one key
          pds.push(() => Uint8Array.from([0xa2, 0x62, 0x6f, 0x70]));
          pds.push(await pds.commitFrame(account, { blockPadding: 2_100_000 }));
          goodSeqs.push(pds.push(await pds.commitFrame(account)));
          return reply(200, {
            goodSeqs,
            drops: {
              BadSignature: 1,
              WrongHost: 1,
              RevNotIncreasing: 1,
              "InvalidEvent:InvalidCbor": 1,
              "InvalidEvent:TooBig": 1,
            },
          });
        }
        return reply(404, { error: "unknown control call" });
      } catch (err) {
        return reply(500, { error: String(err) });
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const pds of hosts.values()) await pds.close();
      await outsider.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
