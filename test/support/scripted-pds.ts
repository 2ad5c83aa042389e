import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Secp256k1Keypair } from "@atproto/crypto";
import { type WebSocket, WebSocketServer } from "ws";
import { writeCar } from "../../src/protocol/car";
import { encodeDagCbor } from "../../src/protocol/cbor";
import { cidForDagCbor } from "../../src/protocol/cid";
import { encodeErrorFrame, encodeFrame, type Frame } from "../../src/protocol/frame";

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

export type Account = {
  did: string;
  keypair: Secp256k1Keypair;
  lastMicros: number;
  lastRev: string | null;
  pds: string;
};

export class ScriptedPlc {
  readonly docs = new Map<string, unknown>();
  /** Document requests served (or refused), per DID: tests bound the relay's look-ups. */
  readonly requestsByDid = new Map<string, number>();
  /** DIDs whose document requests are answered 503 (PLC down or rate-limiting us, for them). */
  readonly unavailableDids = new Set<string>();
  /** Per DID, milliseconds before its document is answered (a slow directory, for them). */
  readonly slowDids = new Map<string, number>();
  server!: Server;
  url = "";

  /** Milliseconds before each document is answered: a directory across the network. */
  constructor(readonly answerDelayMs = 0) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = req.url ?? "/";
      const delayMs = path.startsWith("/_")
        ? 0
        : (this.slowDids.get(decodeURIComponent(path.slice(1).split("?")[0] ?? "")) ??
          this.answerDelayMs);
      if (delayMs > 0) {
        setTimeout(() => this.#answer(req, res), delayMs);
        return;
      }
      this.#answer(req, res);
    });
    // benchmarks keep the event loop busy for seconds: do not let idle keep-alives reset
    this.server.keepAliveTimeout = 120_000;
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://localhost:${(this.server.address() as AddressInfo).port}`;
  }

  #answer(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (path.startsWith("/_")) {
      this.#control(req, res, path);
      return;
    }
    const did = decodeURIComponent(path.slice(1));
    this.requestsByDid.set(did, (this.requestsByDid.get(did) ?? 0) + 1);
    if (this.unavailableDids.has(did)) {
      res.writeHead(503, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ message: "unavailable" }));
      return;
    }
    const doc = this.docs.get(did);
    res.writeHead(doc ? 200 : 404, { "Content-Type": "application/json" });
    res.end(JSON.stringify(doc ?? { message: "DID not registered" }));
  }

  /**
   * Test control, for tests inside workerd (they reach this server on loopback):
   *   GET  /_stats?did=D           -> { requests }  document requests for D (all DIDs without did)
   *   POST /_unavailable?did=D&on=1|0 -> answer D's document requests 503, or stop (per DID,
   *                                      so test files running at the same time are not hit)
   *   POST /_slow?did=D&ms=N           -> answer D's document requests after N ms (0: at once)
   */
  #control(req: IncomingMessage, res: ServerResponse, path: string): void {
    const url = new URL(req.url ?? "/", "http://x");
    const reply = (body: unknown) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (path === "/_stats") {
      const did = url.searchParams.get("did");
      const all = [...this.requestsByDid.values()].reduce((a, b) => a + b, 0);
      reply({ requests: did === null ? all : (this.requestsByDid.get(did) ?? 0) });
      return;
    }
    if (path === "/_unavailable") {
      const did = url.searchParams.get("did") ?? "";
      if (url.searchParams.get("on") === "1") this.unavailableDids.add(did);
      else this.unavailableDids.delete(did);
      reply({ unavailable: this.unavailableDids.has(did) });
      return;
    }
    if (path === "/_slow") {
      const did = url.searchParams.get("did") ?? "";
      const ms = Number(url.searchParams.get("ms") ?? 0);
      if (ms > 0) this.slowDids.set(did, ms);
      else this.slowDids.delete(did);
      reply({ slowMs: this.slowDids.get(did) ?? 0 });
      return;
    }
    res.writeHead(404, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: "unknown control call" }));
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

/** Every scripted account by DID, so one host can adopt another's account (a migration). */
const accountsByDid = new Map<string, Account>();

export class ScriptedPds {
  readonly frames: Uint8Array[] = [];
  readonly accounts: Account[] = [];
  readonly sockets = new Set<WebSocket>();
  server!: Server;
  wss!: WebSocketServer;
  hostname = "";
  url = "";

  /** When set, subscribeRepos upgrades are answered `302` to this host (redirect test). */
  redirectUpgradeTo: string | null = null;
  /** subscribeRepos sockets opened so far (a relay that stopped reading a host reconnects). */
  subscriptions = 0;

  constructor(private readonly plc: ScriptedPlc) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.#http(req, res));
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on("upgrade", (req, socket, head) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname !== "/xrpc/com.atproto.sync.subscribeRepos") return socket.destroy();
      if (this.redirectUpgradeTo !== null) {
        socket.end(
          `HTTP/1.1 302 Found\r\nLocation: http://${this.redirectUpgradeTo}${req.url ?? "/"}\r\n` +
            "Content-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.subscriptions++;
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
    accountsByDid.set(did, account);
    return account;
  }

  /** An account whose DID document names another PDS: this host has no say over it. */
  async addForeignAccount(): Promise<Account> {
    const account = await this.addAccount();
    this.accounts.pop();
    account.pds = "https://elsewhere.example.com";
    this.plc.register(account.did, account.keypair.did(), account.pds);
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

  async pushGood(account: Account, count: number, blockPadding = 0): Promise<number[]> {
    const seqs: number[] = [];
    for (let i = 0; i < count; i++)
      seqs.push(this.push(await this.commitFrame(account, { blockPadding })));
    return seqs;
  }

  /** An `#identity` of `account`; `extra` adds fields the lexicon does not define. */
  identityFrame(
    account: Account,
    options: { handle?: string; time?: string; extra?: Record<string, unknown> } = {},
  ) {
    return (seq: number) =>
      encodeFrame({
        kind: "identity",
        body: {
          seq,
          did: account.did,
          time: options.time ?? new Date().toISOString(),
          ...(options.handle !== undefined ? { handle: options.handle } : {}),
          ...options.extra,
        },
      } as Frame);
  }

  /** An `#account` of `account`; `extra` adds fields the lexicon does not define. */
  accountFrame(
    account: Account,
    options: { active?: boolean; status?: string; extra?: Record<string, unknown> } = {},
  ) {
    return (seq: number) =>
      encodeFrame({
        kind: "account",
        body: {
          seq,
          did: account.did,
          time: new Date().toISOString(),
          active: options.active ?? true,
          ...(options.status !== undefined ? { status: options.status } : {}),
          ...options.extra,
        },
      } as Frame);
  }

  /**
   * Test control on the host itself, for tests inside workerd (they reach it on loopback);
   * `did` defaults to the host's first account, any scripted account may be named:
   *   POST /_script/identity?did&handle&time&padding=N -> { seq }  N bytes of an unknown field
   *   POST /_script/account?did&active&status&padding=N -> { seq }
   *   POST /_script/commit?did                  -> { seq }   a valid commit, signed by the account
   *   POST /_script/foreign?count=N             -> { did, seqs }  commits of an account whose
   *                                                 document names another PDS
   *   POST /_script/migrate-in?did              -> { seq }   the account moves here: its document
   *                                                 names this host, which emits its #identity
   *   POST /_script/redirect-upgrade?to=HOST    -> {}        upgrades answered 302 to HOST
   */
  async #script(url: URL): Promise<unknown> {
    const did = url.searchParams.get("did");
    const account = did === null ? this.accounts[0] : accountsByDid.get(did);
    if (!account) throw new Error(`no scripted account ${did}`);
    const padding = Number(url.searchParams.get("padding") ?? "0");
    const extra = padding > 0 ? { zPadding: new Uint8Array(padding) } : undefined;
    switch (url.pathname) {
      case "/_script/identity": {
        const handle = url.searchParams.get("handle");
        const time = url.searchParams.get("time");
        return {
          seq: this.push(
            this.identityFrame(account, {
              ...(handle !== null ? { handle } : {}),
              ...(time !== null ? { time } : {}),
              ...(extra ? { extra } : {}),
            }),
          ),
        };
      }
      case "/_script/account": {
        const status = url.searchParams.get("status");
        return {
          seq: this.push(
            this.accountFrame(account, {
              active: url.searchParams.get("active") !== "false",
              ...(status !== null ? { status } : {}),
              ...(extra ? { extra } : {}),
            }),
          ),
        };
      }
      case "/_script/commit":
        return { seq: this.push(await this.commitFrame(account)) };
      case "/_script/foreign": {
        const foreign = await this.addForeignAccount();
        const seqs: number[] = [];
        const count = Number(url.searchParams.get("count") ?? "1");
        for (let i = 0; i < count; i++) seqs.push(this.push(await this.commitFrame(foreign)));
        return { did: foreign.did, seqs };
      }
      case "/_script/migrate-in": {
        account.pds = this.url;
        this.plc.register(account.did, account.keypair.did(), this.url);
        if (!this.accounts.includes(account)) this.accounts.push(account);
        return { seq: this.push(this.identityFrame(account)) };
      }
      case "/_script/redirect-upgrade":
        this.redirectUpgradeTo = url.searchParams.get("to");
        return {};
      default:
        throw new Error(`unknown script call ${url.pathname}`);
    }
  }

  async #http(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname.startsWith("/_script/") && req.method === "POST") {
      try {
        const body = await this.#script(url);
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
      } catch (err) {
        res.writeHead(500, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: String(err) }));
      }
      return;
    }
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
