import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { schemas } from "@atproto/api";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "../../src/protocol/errors";
import { type CommitBody, decodeFrame, type Frame } from "../../src/protocol/frame";
import { validateSubscribeReposMessage, validateXrpcOutput } from "../../src/protocol/lexicon";
import { loadCapturedFrames } from "../fixtures/captured";

const LEXICON_DIR = join(import.meta.dirname, "..", "..", "src", "lexicons");
const captured = loadCapturedFrames().map((f) => ({ ...f, frame: decodeFrame(f.bytes) }));

function violation(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError && err.name === "LexiconViolation") return err.message;
    throw err;
  }
  return "accepted";
}

function firstOf<K extends Frame["kind"]>(kind: K, pick: (f: Frame) => boolean = () => true) {
  const found = captured.find((c) => c.frame.kind === kind && pick(c.frame));
  if (!found) throw new Error(`no captured ${kind} frame`);
  return found.frame as Extract<Frame, { kind: K }>;
}

describe("the lexicon documents we serve", () => {
  it("are the official com.atproto.sync documents, unchanged", () => {
    const official = new Map<string, unknown>(Object.values(schemas).map((doc) => [doc.id, doc]));
    const files = readdirSync(LEXICON_DIR).filter((f) => f.endsWith(".json"));
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const file of files) {
      const doc = JSON.parse(readFileSync(join(LEXICON_DIR, file), "utf8")) as { id: string };
      expect(`${doc.id}.json`).toBe(file);
      expect(doc, file).toEqual(official.get(doc.id));
    }
  });
});

describe("validateSubscribeReposMessage", () => {
  it("accepts every frame captured from the reference PDS, of every kind", () => {
    const kinds = new Set(captured.map((c) => c.frame.kind));
    expect([...kinds].sort()).toEqual(["account", "commit", "identity", "sync"]);
    for (const c of captured) {
      expect(
        violation(() => validateSubscribeReposMessage(c.frame)),
        `${c.file}#${c.index}`,
      ).toBe("accepted");
    }
  });

  it("accepts an #info message", () => {
    const info: Frame = { kind: "info", body: { name: "OutdatedCursor" } };
    expect(violation(() => validateSubscribeReposMessage(info))).toBe("accepted");
  });

  const commit = firstOf("commit", (f) => f.kind === "commit" && f.body.ops.length > 0).body;
  const withCommit = (patch: (b: Record<string, unknown>) => void): Frame => {
    const body: Record<string, unknown> = { ...commit, ops: commit.ops.map((op) => ({ ...op })) };
    patch(body);
    return { kind: "commit", body: body as CommitBody };
  };
  const firstOp = (b: Record<string, unknown>) => (b.ops as Record<string, unknown>[])[0] ?? {};

  it.each<[string, (b: Record<string, unknown>) => void, RegExp]>([
    ["without rev", (b) => delete b.rev, /rev/],
    ["without blocks", (b) => delete b.blocks, /blocks/],
    ["with seq as a string", (b) => (b.seq = "12"), /seq must be an integer/],
    ["with commit as a CID string", (b) => (b.commit = String(b.commit)), /commit must be a CID/],
    ["with blocks as a string", (b) => (b.blocks = "AAAA"), /blocks must be a byte array/],
    ["with an op cid as a string", (b) => (firstOp(b).cid = "bafy"), /cid must be a CID/],
    ["with an op without path", (b) => delete firstOp(b).path, /path/],
    ["with tooBig missing", (b) => delete b.tooBig, /tooBig/],
    ["with a malformed time", (b) => (b.time = "yesterday"), /time must be/],
    ["with 201 ops", (b) => (b.ops = Array.from({ length: 201 }, () => commit.ops[0])), /ops/],
  ])("rejects a #commit %s", (_what, patch, message) => {
    expect(violation(() => validateSubscribeReposMessage(withCommit(patch)))).toMatch(message);
  });

  it("rejects #sync, #identity and #account bodies that break their definitions", () => {
    const sync = firstOf("sync").body;
    const identity = firstOf("identity").body;
    const account = firstOf("account").body;
    const cases: Frame[] = [
      { kind: "sync", body: { ...sync, blocks: new Uint8Array(10_001) } },
      { kind: "sync", body: { ...sync, did: "not a did" } },
      { kind: "identity", body: { ...identity, handle: "not a handle!" } },
      { kind: "account", body: { ...account, active: "yes" as unknown as boolean } },
      { kind: "account", body: { seq: 1, did: account.did, time: account.time } as never },
      { kind: "info", body: {} as never },
    ];
    for (const frame of cases) {
      expect(
        violation(() => validateSubscribeReposMessage(frame)),
        frame.kind,
      ).not.toBe("accepted");
    }
  });
});

describe("validateXrpcOutput", () => {
  const { frame } = captured.find((c) => c.frame.kind === "commit") ?? {};
  if (frame?.kind !== "commit") throw new Error("no commit");
  const head = frame.body.commit.toString();

  it("accepts well-formed outputs of our query endpoints", () => {
    const outputs: [string, unknown][] = [
      ["com.atproto.sync.getLatestCommit", { cid: head, rev: frame.body.rev }],
      ["com.atproto.sync.getRepoStatus", { did: frame.body.repo, active: true }],
      [
        "com.atproto.sync.listRepos",
        { repos: [{ did: frame.body.repo, head, rev: frame.body.rev, active: true }] },
      ],
      [
        "com.atproto.sync.listHosts",
        { hosts: [{ hostname: "pds.example.com", seq: 5, status: "active" }], cursor: "1" },
      ],
      ["com.atproto.sync.getHostStatus", { hostname: "pds.example.com", status: "idle" }],
    ];
    for (const [nsid, output] of outputs)
      expect(
        violation(() => validateXrpcOutput(nsid, output)),
        nsid,
      ).toBe("accepted");
  });

  it.each<[string, unknown]>([
    ["com.atproto.sync.getLatestCommit", { cid: "not-a-cid", rev: "3l3qo2vutsw2b" }],
    [
      "com.atproto.sync.getLatestCommit",
      { cid: "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm" },
    ],
    ["com.atproto.sync.getRepoStatus", { did: "did:plc:abc", active: "true" }],
    ["com.atproto.sync.listRepos", { repos: [{ did: "did:plc:abc" }] }],
    ["com.atproto.sync.listHosts", { cursor: "1" }],
    ["com.atproto.sync.getHostStatus", { seq: 1 }],
  ])("rejects a bad %s output", (nsid, output) => {
    expect(violation(() => validateXrpcOutput(nsid, output))).not.toBe("accepted");
  });
});
