import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Secp256k1Keypair } from "@atproto/crypto";
import { type WebSocket, WebSocketServer } from "ws";
import { writeCar } from "../../src/protocol/car";
import { encodeDagCbor } from "../../src/protocol/cbor";
import { cidForDagCbor } from "../../src/protocol/cid";
import { encodeErrorFrame, encodeFrame } from "../../src/protocol/frame";

// Upstreams written for tests: a tiny PLC directory and PDS-like hosts that serve
// describeServer and subscribeRepos (with cursor replay) from a script of frames the test
// controls over HTTP. Frames are built from scratch with real signatures (@atproto/crypto), so
// the relay's checks run for real; hostile frames (forged signature, wrong host, rev going
// backwards, malformed CBOR, oversized) are built the same way with one thing wrong.

const S32 = "234567abcdefghijklmnopqrstuvwxyz";

export function tidFor(micros: number): string {
  let v = BigInt(Math.floor(micros)) * 1024n;
  let out = "";
  for (let i = 0; i < 13; i++) {
    out = S32[Number(v % 32n)] + out;
    v /= 32n;
  }
  return out;
}

type Account = {
  did: string;
  keypair: Secp256k1Keypair;
  lastMicros: number;
  lastRev: string | null;
  pds: string;
};

export class ScriptedPlc {
  readonly docs = new Map<string, unknown>();
  server!: Server;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const did = decodeURIComponent((req.url ?? "/").slice(1));
      const doc = this.docs.get(did);
      res.writeHead(doc ? 200 : 404, { "Content-Type": "application/json" });
      res.end(JSON.stringify(doc ?? { message: "DID not registered" }));
    });
    // benchmarks keep the event loop busy for seconds: do not let idle keep-alives reset
    this.server.keepAliveTimeout = 120_000;
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://localhost:${(this.server.address() as AddressInfo).port}`;
  }

  register(did: string, keyDid: string, pdsUrl: string): void {
    this.docs.set(did, {
      "@context": ["https://www.w3.org/ns/did/v1"],
      id: did,
      alsoKnownAs: [`at://${did.slice(8, 16)}.test`],
      verificationMethod: [
        {
          id: `${did}#atproto`,
          type: "Multikey",
          controller: did,
          publicKeyMultibase: keyDid.slice("did:key:".length),
        },
      ],
      service: [{ id: "#atproto_pds", type: "AtprotoPersonalDataServer", serviceEndpoint: pdsUrl }],
    });
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

let didCounter = 0;

export class ScriptedPds {
  readonly frames: Uint8Array[] = [];
  readonly accounts: Account[] = [];
  readonly sockets = new Set<WebSocket>();
  server!: Server;
  wss!: WebSocketServer;
  hostname = "";
  url = "";

  constructor(private readonly plc: ScriptedPlc) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.#http(req, res));
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on("upgrade", (req, socket, head) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname !== "/xrpc/com.atproto.sync.subscribeRepos") return socket.destroy();
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const cursor = url.searchParams.get("cursor");
        // a new subscriber without cursor starts at the current offset, as a PDS does
        const from = cursor === null ? this.frames.length : Number(cursor);
        if (from > this.frames.length) {
          // as the reference PDS answers a cursor ahead of its own seq
          ws.send(encodeErrorFrame("FutureCursor", "cursor is ahead of this host"));
          ws.close(1008, "FutureCursor");
          return;
        }
        for (let i = from; i < this.frames.length; i++) ws.send(this.frames[i] as Uint8Array);
        this.sockets.add(ws);
        ws.on("close", () => this.sockets.delete(ws));
      });
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    const port = (this.server.address() as AddressInfo).port;
    this.hostname = `localhost:${port}`;
    this.url = `http://localhost:${port}`;
  }

  async addAccount(): Promise<Account> {
    const keypair = await Secp256k1Keypair.create();
    didCounter++;
    const did = `did:plc:scripted${String(didCounter).padStart(4, "0")}${Math.random().toString(36).slice(2, 10).padEnd(8, "a")}`;
    this.plc.register(did, keypair.did(), this.url);
    const account: Account = {
      did,
      keypair,
      lastMicros: Date.now() * 1000,
      lastRev: null,
      pds: this.url,
    };
    this.accounts.push(account);
    return account;
  }

  /** Forgets every frame and drops subscribers, as a PDS that lost its data would. */
  resetSequence(): void {
    this.frames.length = 0;
    for (const ws of this.sockets) ws.terminate();
  }

  /** Appends a frame with the next seq and sends it to live subscribers. */
  push(makeFrame: (seq: number) => Uint8Array): number {
    const seq = this.frames.length + 1;
    const frame = makeFrame(seq);
    this.frames.push(frame);
    for (const ws of this.sockets) ws.send(frame);
    return seq;
  }

  /** A valid, signed one-op commit of `account` (rev after its last). */
  async commitFrame(
    account: Account,
    options: { signer?: Secp256k1Keypair; rev?: string; blockPadding?: number } = {},
  ) {
    account.lastMicros = Math.max(account.lastMicros + 1, Date.now() * 1000);
    const rev = options.rev ?? tidFor(account.lastMicros);
    const record = encodeDagCbor({
      $type: "app.bsky.feed.post",
      text: `post ${rev}${"x".repeat(options.blockPadding ?? 0)}`,
      createdAt: new Date().toISOString(),
    });
    const recordCid = cidForDagCbor(record);
    const mstNode = encodeDagCbor({ l: null, e: [] });
    const data = cidForDagCbor(mstNode);
    const unsigned = { did: account.did, version: 3, data, rev, prev: null };
    const sig = await (options.signer ?? account.keypair).sign(encodeDagCbor(unsigned));
    const commitBlock = encodeDagCbor({ ...unsigned, sig });
    const commitCid = cidForDagCbor(commitBlock);
    const blocks = writeCar(
      [commitCid],
      [
        [commitCid, commitBlock],
        [recordCid, record],
        [data, mstNode],
      ],
    );
    const since = account.lastRev;
    // the script's hostile commits do not move the account's real history
    if (!options.rev && !options.signer) account.lastRev = rev;
    return (seq: number) =>
      encodeFrame({
        kind: "commit",
        body: {
          seq,
          rebase: false,
          tooBig: false,
          repo: account.did,
          commit: commitCid,
          rev,
          since,
          blocks,
          ops: [{ action: "create", path: `app.bsky.feed.post/${rev}`, cid: recordCid }],
          blobs: [],
          time: new Date().toISOString(),
        },
      });
  }

  async pushGood(account: Account, count: number): Promise<number[]> {
    const seqs: number[] = [];
    for (let i = 0; i < count; i++) seqs.push(this.push(await this.commitFrame(account)));
    return seqs;
  }

  async #http(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/xrpc/com.atproto.server.describeServer") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ did: `did:web:${this.hostname}`, availableUserDomains: [".test"] }));
      return;
    }
    res.writeHead(404, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: "NotFound" }));
  }

  close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    return new Promise((r) => this.server.close(() => r()));
  }
}
