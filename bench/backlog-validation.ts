import { readFileSync } from "node:fs";
import { type DidDocumentInfo, parseDidDocument } from "../src/protocol/did-doc";
import { decodeFrame, type SequencedFrame } from "../src/protocol/frame";
import { installRelaySha256 } from "../src/relay-sha256";
import { pinMainThread } from "./cpu-placement";
import { threadTimes } from "./workerd-cpu";

// The backlog benchmark's reference (bench/backlog.ts): the frames the hosts wrote, validated by
// the relay's own validation (decodeFrame, then validateEvent: stateless checks, rev order, host
// authority, signature, continuity) on one core, in a process of its own so that its first pass
// starts as cold as the restarted relay's isolate does, placed as the relay's runtime is (its
// validating thread on the measured core, V8's helper threads on the other: cpu-placement.ts).
// Every pass starts with no identity and no repo state: each account's DID document is parsed
// from the text the PLC serves the first time the account is met (JSON.parse +
// parseDidDocument: what the relay's resolver does after its fetch), so every key is seen for
// the first time, as in the drain. Not included: the fetch
// itself, and keeping the document (identity-cache.ts); both are part of the pipeline.
//
// Run by bench/backlog.ts as `tsx bench/backlog-validation.ts <input.json>`; prints one JSON line.

export type BacklogInput = {
  hosts: { hostname: string; frames: string[] }[]; // base64, each host's backlog in order
  documents: Record<string, string>; // DID -> document JSON as served
};

// src/ingest/validate.ts is loaded by its path at run time: its imports reach the ingester's
// storage modules, whose types are the Workers runtime's, which this (Node) project does not see.
// These are the parts of its signature used here.
type Identity = {
  peek(did: string): DidDocumentInfo | null;
  get(did: string): Promise<DidDocumentInfo>;
};
type RepoState = object;
type ValidateEvent = (
  frame: SequencedFrame,
  ctx: { hostname: string; nowMs: number; identity: Identity; repo: RepoState | undefined },
) => Promise<
  { accept: true; next: RepoState | null } | { accept: false; reason: string; detail: string }
>;
const VALIDATE_MODULE = "../src/ingest/validate.ts";
const { validateEvent } = (await import(VALIDATE_MODULE)) as { validateEvent: ValidateEvent };

/**
 * `cpuSeconds`: CPU time of the thread that validates (this process's main thread), as the
 * drain's figure is the CPU time of the relay's JavaScript thread: V8's compiler and GC helper
 * threads run beside both, on the other core (cpu-placement.ts), and count in neither.
 */
export type Timed = { events: number; wallSeconds: number; cpuSeconds: number };
export type Pass = Timed & { laterHalf: Timed };
export type BacklogValidation = { cold: Pass; warm: Pass[] };

/** CPU seconds of the main thread so far (schedstat); the process's where /proc has none. */
function mainThreadCpuSeconds(): number {
  try {
    return threadTimes("self", process.pid).run;
  } catch {
    const cpu = process.cpuUsage();
    return (cpu.user + cpu.system) / 1e6;
  }
}

/** Resolves from the documents' text; the same calls validateEvent makes of the real cache. */
function documentsIdentity(documents: Record<string, string>): Identity {
  const parsed = new Map<string, DidDocumentInfo>();
  const get = (did: string): DidDocumentInfo => {
    let info = parsed.get(did);
    if (!info) {
      const text = documents[did];
      if (text === undefined) throw new Error(`no document for ${did}`);
      info = parseDidDocument(JSON.parse(text));
      parsed.set(did, info);
    }
    return info;
  };
  return {
    peek: (did) => parsed.get(did) ?? null,
    get: async (did) => get(did),
  };
}

/**
 * One pass over every host's backlog, each host's frames in order: the first half of every
 * host's frames, then the second half (`laterHalf`: every account already met, as in the
 * steady state of a drain; hosts hold accounts of their own, so the order across hosts does not
 * matter).
 */
async function pass(
  hosts: { hostname: string; frames: Uint8Array[] }[],
  input: BacklogInput,
): Promise<Pass> {
  const identity = documentsIdentity(input.documents);
  const repos = new Map<string, RepoState>();
  const validate = async (hostname: string, bytes: Uint8Array) => {
    const frame = decodeFrame(bytes) as SequencedFrame;
    const did = frame.kind === "commit" ? frame.body.repo : frame.body.did;
    const verdict = await validateEvent(frame, {
      hostname,
      nowMs: Date.now(),
      identity,
      repo: repos.get(did),
    });
    if (!verdict.accept) throw new Error(`reference refused an event: ${verdict.detail}`);
    if (verdict.next) repos.set(did, verdict.next);
  };
  const timed = async (half: "first" | "second") => {
    let events = 0;
    const cpuStart = mainThreadCpuSeconds();
    const start = performance.now();
    for (const host of hosts) {
      const middle = Math.floor(host.frames.length / 2);
      const frames = half === "first" ? host.frames.slice(0, middle) : host.frames.slice(middle);
      for (const bytes of frames) await validate(host.hostname, bytes);
      events += frames.length;
    }
    return {
      events,
      wallSeconds: (performance.now() - start) / 1000,
      cpuSeconds: mainThreadCpuSeconds() - cpuStart,
    };
  };
  const first = await timed("first");
  const laterHalf = await timed("second");
  return {
    events: first.events + laterHalf.events,
    wallSeconds: first.wallSeconds + laterHalf.wallSeconds,
    cpuSeconds: first.cpuSeconds + laterHalf.cpuSeconds,
    laterHalf,
  };
}

const WARM_PASSES = 3;

async function main(inputFile: string): Promise<void> {
  pinMainThread();
  // as the relay's entry (src/index.ts) does
  installRelaySha256();
  const input = JSON.parse(readFileSync(inputFile, "utf8")) as BacklogInput;
  const hosts = input.hosts.map((h) => ({
    hostname: h.hostname,
    frames: h.frames.map((f) => new Uint8Array(Buffer.from(f, "base64"))),
  }));
  const cold = await pass(hosts, input);
  const warm: Pass[] = [];
  for (let i = 0; i < WARM_PASSES; i++) warm.push(await pass(hosts, input));
  const result: BacklogValidation = { cold, warm };
  console.log(JSON.stringify(result));
}

const inputFile = process.argv[2];
if (inputFile && import.meta.url === `file://${process.argv[1]}`) await main(inputFile);
