import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { IdentityUnavailable } from "../src/identity/resolver";
import { FrameQueue } from "../src/ingest/frame-queue";
import { PREFETCH_MAX_WAITING } from "../src/ingest/identity-prefetch";
import {
  MAX_OBJECT_QUEUED_BYTES,
  MAX_PENDING_BYTES,
  MAX_QUEUED_BYTES,
  MAX_QUEUED_FRAMES,
  QUEUED_FRAME_OVERHEAD_BYTES,
} from "../src/ingest/intake";
import {
  IDENTITY_MEMORY_ENTRIES,
  IDENTITY_MEMORY_FAILURES,
  REPO_STATE_MEMORY_ENTRIES,
  REPO_STATE_RUN_CACHE_ENTRIES,
} from "../src/ingest/memory-bounds";
import { newRateWindow } from "../src/ingest/placement";
import { fullBucket } from "../src/ingest/rate-limit";
import { type DidDocumentInfo, parseDidDocument } from "../src/protocol/did-doc";
import { formatDidKey } from "../src/protocol/did-key";
import { MAX_FRAME_BYTES } from "../src/protocol/limits";
import { reportFigure } from "./report";

// What one HostIngester can hold in memory, at any backlog and however many hosts it carries
// (issue 11: "memory stays bounded and stated"). Every structure that grows with traffic has a
// bound in the code; this prints each bound, in bytes where the entry size matters: the bytes
// of an entry are measured here, in V8's heap, on entries built the way the relay builds them
// (a DID document parsed by parseDidDocument from a PLC-shaped document; an account state with
// real-length DIDs, revs and CIDs), then multiplied by the bound. A Durable Object has 128 MB.
// `npm run bench -- ingester-memory`.

// Loaded by path at run time: their imports reach the Workers runtime's storage types, which this
// (Node) project does not see. These are the parts used here (an account state is built below
// with repo-state.ts's fields, untyped for the same reason).
const HOST_RECORD_MODULE = "../src/ingest/host-record.ts";
const PACKED_STORE_MODULE = "../src/storage/packed-store.ts";
const { newHostRecord } = (await import(HOST_RECORD_MODULE)) as {
  newHostRecord(hostname: string, limits: object, pinned: boolean): unknown;
};
const { DEFAULT_PACKED_STORE_OPTIONS } = (await import(PACKED_STORE_MODULE)) as {
  DEFAULT_PACKED_STORE_OPTIONS: { compactAtEntries: number };
};

const OBJECT_LIMIT_MB = 128;
const SAMPLE = 20_000;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Bytes of V8 heap per entry kept by `build` (averaged over SAMPLE entries). */
function heapPerEntry(build: (i: number) => unknown): number {
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept: unknown[] = [];
  for (let i = 0; i < SAMPLE; i++) kept.push(build(i));
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  if (kept.length !== SAMPLE) throw new Error("unreachable");
  return (after - before) / SAMPLE;
}

const base32 = "abcdefghijklmnopqrstuvwxyz234567";
/** A flat string (as one decoded from the network is), not a chain of concatenations. */
function randomText(length: number, alphabet = base32): string {
  const chars: string[] = [];
  for (let i = 0; i < length; i++)
    chars.push(alphabet[Math.floor(Math.random() * alphabet.length)] as string);
  return chars.join("");
}
const did = () => `did:plc:${randomText(24)}`;
const cid = () => `bafyrei${randomText(52)}`;
const rev = () => `3l${randomText(11, "234567abcdefghij")}`;

/** A PLC-shaped document, as plc.directory serves it for an account on a PDS. */
function plcDocument(): unknown {
  const id = did();
  const key = formatDidKey({
    curve: "secp256k1",
    compressed: secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true),
  });
  return {
    "@context": [
      "https://www.w3.org/ns/did/v1",
      "https://w3id.org/security/multikey/v1",
      "https://w3id.org/security/suites/secp256k1-2019/v1",
    ],
    id,
    alsoKnownAs: [`at://${randomText(12)}.bsky.social`],
    verificationMethod: [
      {
        id: `${id}#atproto`,
        type: "Multikey",
        controller: id,
        publicKeyMultibase: key.slice("did:key:".length),
      },
    ],
    service: [
      {
        id: "#atproto_pds",
        type: "AtprotoPersonalDataServer",
        serviceEndpoint: `https://${randomText(8)}.us-east.host.bsky.network`,
      },
    ],
  };
}

export default async function run(): Promise<void> {
  const mb = (bytes: number) => bytes / 1e6;
  // as fetched: JSON text, parsed and reduced to what is kept (the parsed document is garbage)
  const documents = Array.from({ length: SAMPLE }, () => JSON.stringify(plcDocument()));
  // identity-cache.ts keeps { info, fetchedMs, storedMs } per DID, in a Map
  const identityMap = new Map<string, unknown>();
  const identityEntry = heapPerEntry((i) => {
    const info: DidDocumentInfo = parseDidDocument(JSON.parse(documents[i] as string));
    identityMap.set(info.did, { info, fetchedMs: Date.now(), storedMs: null });
    return null;
  });
  identityMap.clear();
  // repo-state.ts: an account state per DID in a Map, and the packed store's tuple per DID
  const stateMap = new Map<string, object>();
  const stateEntry = heapPerEntry(() => {
    const state = {
      did: did(),
      host: "pds.example.com",
      rev: rev(),
      head: cid(),
      data: cid(),
      active: true,
      status: null,
      relayTakedown: false,
      flag: null,
    };
    stateMap.set(state.did, state);
    return null;
  });
  stateMap.clear();
  const storedMap = new Map<string, unknown[]>();
  const storedEntry = heapPerEntry(() => {
    storedMap.set(did(), ["pds.example.com", rev(), cid(), cid(), true, null, null]);
    return null;
  });
  storedMap.clear();

  // a failed resolution: { error, untilMs } per DID; the error as the resolver throws it
  const failureMap = new Map<string, unknown>();
  const failureEntry = heapPerEntry(() => {
    const error = new IdentityUnavailable(`no PLC source answered for ${did()}: HTTP 503`);
    failureMap.set(did(), { error, untilMs: Date.now() });
    return null;
  });
  failureMap.clear();
  // identity-prefetch.ts: DID -> hostname of the frame that asked
  const waitingMap = new Map<string, string>();
  const waitingEntry = heapPerEntry(() => {
    waitingMap.set(did(), "pds.example.com");
    return null;
  });
  waitingMap.clear();
  // per host, beyond its queue: its record, token bucket, rate window and their Map entries
  // (six maps per host in host-ingester.ts; the socket is the runtime's, not counted here)
  const hostMaps = Array.from({ length: 6 }, () => new Map<string, unknown>());
  const hostEntry = heapPerEntry(() => {
    const hostname = `${randomText(10)}.example.com`;
    const limits = { eventsPerSecond: 50, maxAccounts: 100 };
    const maps = hostMaps as Map<string, unknown>[];
    maps[0]?.set(hostname, newHostRecord(hostname, limits, false));
    maps[1]?.set(hostname, fullBucket(100, Date.now()));
    maps[2]?.set(hostname, newRateWindow(Date.now()));
    for (const map of maps.slice(3)) map.set(hostname, Date.now() * 1000 + 1);
    return null;
  });
  for (const map of hostMaps) map.clear();
  // a queued frame besides its bytes (which are off the V8 heap, in its ArrayBuffer's store): the
  // ArrayBuffer and Uint8Array objects a WebSocket message becomes, and its slot in the queue
  const frames = new FrameQueue();
  const frameEntry = heapPerEntry(() => {
    frames.push(new Uint8Array(new ArrayBuffer(1_500)));
    return null;
  });
  while (frames.shift()) {}
  reportFigure(
    "ingester-memory: a queued frame besides its bytes",
    Math.round(frameEntry),
    "B",
    `measured; counted as ${QUEUED_FRAME_OVERHEAD_BYTES} B with its bytes against the queue limits${frameEntry > QUEUED_FRAME_OVERHEAD_BYTES ? " (MORE THAN COUNTED)" : ""}`,
  );
  const packedEntries =
    REPO_STATE_RUN_CACHE_ENTRIES + DEFAULT_PACKED_STORE_OPTIONS.compactAtEntries;
  const rows: [string, number, string][] = [
    [
      "frames waiting for validation, all hosts, with their objects (INGEST_QUEUE_MAX_BYTES, + one frame)",
      MAX_OBJECT_QUEUED_BYTES + MAX_FRAME_BYTES,
      `${MAX_QUEUED_FRAMES} frames or ${mb(MAX_QUEUED_BYTES)} MB per host`,
    ],
    [
      "accepted events waiting for the Sequencer (+ one frame)",
      MAX_PENDING_BYTES + MAX_FRAME_BYTES,
      "then no host is read",
    ],
    [
      "DID documents in memory",
      IDENTITY_MEMORY_ENTRIES * identityEntry,
      `${IDENTITY_MEMORY_ENTRIES.toLocaleString("en-US")} × ${Math.round(identityEntry)} B measured`,
    ],
    [
      "failed resolutions remembered",
      IDENTITY_MEMORY_FAILURES * failureEntry,
      `${IDENTITY_MEMORY_FAILURES.toLocaleString("en-US")} × ${Math.round(failureEntry)} B measured`,
    ],
    [
      "account states handed out (RepoStateStore cache)",
      REPO_STATE_MEMORY_ENTRIES * stateEntry,
      `${REPO_STATE_MEMORY_ENTRIES.toLocaleString("en-US")} × ${Math.round(stateEntry)} B measured`,
    ],
    [
      "account states read from runs, and not yet compacted (packed store)",
      packedEntries * storedEntry,
      `${packedEntries.toLocaleString("en-US")} × ${Math.round(storedEntry)} B measured`,
    ],
    [
      "DIDs waiting for an identity prefetch",
      PREFETCH_MAX_WAITING * waitingEntry,
      `${PREFETCH_MAX_WAITING.toLocaleString("en-US")} × ${Math.round(waitingEntry)} B measured`,
    ],
  ];
  let total = 0;
  for (const [what, bytes, how] of rows) {
    total += bytes;
    reportFigure(`ingester-memory: ${what}`, mb(bytes), "MB", how);
  }
  reportFigure(
    "ingester-memory: bounded total",
    mb(total),
    "MB",
    `of ${OBJECT_LIMIT_MB} MB per object, at any backlog, besides the code and per-host state`,
  );
  reportFigure(
    "ingester-memory: per host, besides its queue",
    hostEntry,
    "B",
    `measured: record, rate budget, placement window, cursors; and its socket; 1,000 hosts: ${mb(1000 * hostEntry).toFixed(1)} MB`,
  );
}
