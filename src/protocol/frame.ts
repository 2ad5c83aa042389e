import { concatBytes } from "./bytes";
import { decodeDagCborFirst, encodeDagCbor } from "./cbor";
import { CID } from "./cid";
import { decodeCanonicalCommitFrame } from "./commit-frame";
import { ProtocolError } from "./errors";
import {
  MAX_ACCOUNT_FRAME_BYTES,
  MAX_FRAME_BYTES,
  MAX_IDENTITY_FRAME_BYTES,
  MAX_INFO_FRAME_BYTES,
  MAX_MESSAGE_NAME_CHARS,
  MAX_SYNC_FRAME_BYTES,
} from "./limits";

// A subscribeRepos message is two concatenated DAG-CBOR values: a header `{op, t}` and a body.
// `op: 1` carries a message whose type is `t` (`#commit`, `#sync`, ...); `op: -1` an error
// `{error, message?}`. Structural checks here are the lexicon's field types; semantic checks
// (CAR, signatures, revs) live in event-checks.ts and the ingester.
//
// Fields the lexicon does not define are decoded and left out of the typed body; the relay
// forwards `canonicalEventFrame(frame)`, so they never reach consumers (DESIGN.md: unknown
// fields of the outer message are not passed through; `blocks` pass verbatim). Each type's
// frame is bounded by what its defined fields allow (limits.ts), checked before the body is
// decoded.

export type RepoOp = {
  action: "create" | "update" | "delete";
  path: string;
  cid: CID | null;
  prev?: CID;
};

export type CommitBody = {
  seq: number;
  rebase: boolean;
  tooBig: boolean;
  repo: string;
  commit: CID;
  rev: string;
  since: string | null;
  blocks: Uint8Array;
  ops: RepoOp[];
  blobs: CID[];
  prevData?: CID;
  time: string;
};
export type SyncBody = { seq: number; did: string; blocks: Uint8Array; rev: string; time: string };
export type IdentityBody = { seq: number; did: string; time: string; handle?: string };
export type AccountBody = {
  seq: number;
  did: string;
  time: string;
  active: boolean;
  status?: string;
};
export type InfoBody = { name: string; message?: string };
export type ErrorBody = { error: string; message?: string };

export type Frame =
  | { kind: "commit"; body: CommitBody }
  | { kind: "sync"; body: SyncBody }
  | { kind: "identity"; body: IdentityBody }
  | { kind: "account"; body: AccountBody }
  | { kind: "info"; body: InfoBody }
  | { kind: "error"; body: ErrorBody };

export type FrameKind = Frame["kind"];

/** Message kinds that carry a seq and enter the relay's ordered log. */
export type SequencedFrame = Extract<Frame, { kind: "commit" | "sync" | "identity" | "account" }>;

const TYPE_TO_KIND: Record<string, Exclude<FrameKind, "error">> = {
  "#commit": "commit",
  "#sync": "sync",
  "#identity": "identity",
  "#account": "account",
  "#info": "info",
};

type Fields = Record<string, unknown>;

function invalid(message: string): ProtocolError {
  return new ProtocolError("InvalidFrame", message);
}

function asObject(value: unknown, what: string): Fields {
  if (
    typeof value !== "object" ||
    value === null ||
    Array.isArray(value) ||
    value instanceof Uint8Array
  ) {
    throw invalid(`${what} must be a map`);
  }
  if (CID.asCID(value)) throw invalid(`${what} must be a map, not a CID`);
  return value as Fields;
}

function str(o: Fields, key: string): string {
  const v = o[key];
  if (typeof v !== "string") throw invalid(`${key} must be a string`);
  return v;
}

function optStr(o: Fields, key: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw invalid(`${key} must be a string`);
  return v;
}

/**
 * `#info` `name` and an error frame's `error`: names from an open set (`OutdatedCursor`,
 * `FutureCursor`, ...), so letters, digits, `-` and `_`, at most MAX_MESSAGE_NAME_CHARS. They
 * are logged and shown as a host's last error; their `message` is bounded by the frame size.
 */
function messageName(o: Fields, key: string): string {
  const v = str(o, key);
  if (v.length > MAX_MESSAGE_NAME_CHARS || !/^[a-zA-Z][a-zA-Z0-9_-]*$/.test(v))
    throw invalid(`${key} is not a name: ${v.slice(0, 70)}`);
  return v;
}

function int(o: Fields, key: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw invalid(`${key} must be an integer`);
  return v;
}

function bool(o: Fields, key: string): boolean {
  const v = o[key];
  if (typeof v !== "boolean") throw invalid(`${key} must be a boolean`);
  return v;
}

function bytes(o: Fields, key: string): Uint8Array {
  const v = o[key];
  if (!(v instanceof Uint8Array)) throw invalid(`${key} must be bytes`);
  return v;
}

function cid(o: Fields, key: string): CID {
  const v = CID.asCID(o[key]);
  if (!v) throw invalid(`${key} must be a CID link`);
  return v;
}

function optCid(o: Fields, key: string): CID | undefined {
  if (o[key] === undefined) return undefined;
  return cid(o, key);
}

function parseOp(value: unknown): RepoOp {
  const o = asObject(value, "op");
  const action = str(o, "action");
  if (action !== "create" && action !== "update" && action !== "delete") {
    throw invalid(`op action must be create, update or delete, got ${action}`);
  }
  const rawCid = o.cid;
  const opCid = rawCid === null || rawCid === undefined ? null : CID.asCID(rawCid);
  if (rawCid !== null && rawCid !== undefined && !opCid)
    throw invalid("op cid must be a CID link or null");
  if (!("cid" in o)) throw invalid("op cid is required (null for deletes)");
  const op: RepoOp = { action, path: str(o, "path"), cid: opCid };
  const prev = optCid(o, "prev");
  if (prev) op.prev = prev;
  return op;
}

function parseCommit(o: Fields): CommitBody {
  const ops = o.ops;
  if (!Array.isArray(ops)) throw invalid("ops must be an array");
  const blobs = o.blobs;
  if (!Array.isArray(blobs)) throw invalid("blobs must be an array");
  const since = o.since;
  if (since !== null && typeof since !== "string") throw invalid("since must be a string or null");
  const body: CommitBody = {
    seq: int(o, "seq"),
    rebase: bool(o, "rebase"),
    tooBig: bool(o, "tooBig"),
    repo: str(o, "repo"),
    commit: cid(o, "commit"),
    rev: str(o, "rev"),
    since,
    blocks: bytes(o, "blocks"),
    ops: ops.map(parseOp),
    blobs: blobs.map((b) => {
      const c = CID.asCID(b);
      if (!c) throw invalid("blobs must be CID links");
      return c;
    }),
    time: str(o, "time"),
  };
  const prevData = optCid(o, "prevData");
  if (prevData) body.prevData = prevData;
  return body;
}

function parseBody(kind: Exclude<FrameKind, "error">, o: Fields): Frame {
  switch (kind) {
    case "commit":
      return { kind, body: parseCommit(o) };
    case "sync":
      return {
        kind,
        body: {
          seq: int(o, "seq"),
          did: str(o, "did"),
          blocks: bytes(o, "blocks"),
          rev: str(o, "rev"),
          time: str(o, "time"),
        },
      };
    case "identity": {
      const body: IdentityBody = { seq: int(o, "seq"), did: str(o, "did"), time: str(o, "time") };
      const handle = optStr(o, "handle");
      if (handle !== undefined) body.handle = handle;
      return { kind, body };
    }
    case "account": {
      const body: AccountBody = {
        seq: int(o, "seq"),
        did: str(o, "did"),
        time: str(o, "time"),
        active: bool(o, "active"),
      };
      const status = optStr(o, "status");
      if (status !== undefined) body.status = status;
      return { kind, body };
    }
    case "info": {
      const body: InfoBody = { name: messageName(o, "name") };
      const message = optStr(o, "message");
      if (message !== undefined) body.message = message;
      return { kind, body };
    }
    default: {
      const unreachable: never = kind;
      throw invalid(`unhandled kind ${String(unreachable)}`);
    }
  }
}

export type FrameHeader = { op: 1; t: string } | { op: -1 };

/** Decodes and type-checks a header; returns it with the body bytes that follow. */
export function decodeFrameHeader(frame: Uint8Array): [FrameHeader, Uint8Array] {
  const [rawHeader, rest] = decodeRawHeader(frame);
  return [checkHeader(rawHeader), rest];
}

function decodeRawHeader(frame: Uint8Array): [unknown, Uint8Array] {
  if (frame.byteLength > MAX_FRAME_BYTES) {
    throw new ProtocolError(
      "TooBig",
      `frame of ${frame.byteLength} bytes exceeds ${MAX_FRAME_BYTES}`,
    );
  }
  return decodeDagCborFirst(frame);
}

function checkHeader(rawHeader: unknown): FrameHeader {
  const header = asObject(rawHeader, "header");
  const op = header.op;
  if (op === -1) return { op: -1 };
  if (op !== 1) throw invalid(`header op must be 1 or -1, got ${String(op)}`);
  return { op: 1, t: str(header, "t") };
}

const MAX_FRAME_BYTES_BY_KIND: Record<FrameKind, number> = {
  commit: MAX_FRAME_BYTES,
  sync: MAX_SYNC_FRAME_BYTES,
  identity: MAX_IDENTITY_FRAME_BYTES,
  account: MAX_ACCOUNT_FRAME_BYTES,
  info: MAX_INFO_FRAME_BYTES,
  error: MAX_INFO_FRAME_BYTES,
};

function checkFrameSize(frame: Uint8Array, kind: FrameKind, type: string): void {
  const max = MAX_FRAME_BYTES_BY_KIND[kind];
  if (frame.byteLength > max)
    throw new ProtocolError("TooBig", `${type} frame of ${frame.byteLength} bytes exceeds ${max}`);
}

/** Decodes a binary subscribeRepos message. Throws ProtocolError only. */
export function decodeFrame(frame: Uint8Array): Frame {
  if (frame.byteLength <= MAX_FRAME_BYTES) {
    const body = decodeCanonicalCommitFrame(frame);
    if (body) {
      const commit: Frame = { kind: "commit", body };
      keepSource(commit, frame);
      return commit;
    }
  }
  const [rawHeader, bodyBytes] = decodeRawHeader(frame);
  const header = checkHeader(rawHeader);
  const headerKind = header.op === -1 ? "error" : TYPE_TO_KIND[header.t];
  if (headerKind) checkFrameSize(frame, headerKind, header.op === -1 ? "error" : header.t);
  const [rawBody, trailing] = decodeDagCborFirst(bodyBytes);
  if (trailing.length > 0)
    throw new ProtocolError("TrailingBytes", `${trailing.length} bytes after the body`);
  const body = asObject(rawBody, "body");
  if (header.op === -1) {
    const errorBody: ErrorBody = { error: messageName(body, "error") };
    const message = optStr(body, "message");
    if (message !== undefined) errorBody.message = message;
    return { kind: "error", body: errorBody };
  }
  const kind = TYPE_TO_KIND[header.t];
  if (!kind)
    throw new ProtocolError("UnknownFrameType", `unknown message type ${header.t.slice(0, 64)}`);
  const parsed = parseBody(kind, body);
  if (isSequencedFrame(parsed) && onlyKnownFields(rawHeader as Fields, body, parsed))
    keepSource(parsed, frame);
  return parsed;
}

// An accepted event is forwarded with only the fields the lexicon defines (canonicalEventFrame).
// When the upstream's frame had no other field, its bytes already are that encoding (the strict
// decoder admits one encoding per value, and every string of an event is checked to be ASCII
// before the bytes are reused), so they are kept and forwarded as they came: no re-encoding per
// event. The body is frozen so that it keeps meaning those bytes.
const sourceBytes = new WeakMap<object, Uint8Array>();

function keyCount(o: object): number {
  return Object.keys(o).length;
}

function onlyKnownFields(rawHeader: Fields, rawBody: Fields, frame: SequencedFrame): boolean {
  if (keyCount(rawHeader) !== 2) return false;
  if (keyCount(rawBody) !== keyCount(frame.body)) return false;
  if (frame.kind !== "commit") return true;
  const rawOps = rawBody.ops as Fields[];
  return frame.body.ops.every((op, i) => keyCount(rawOps[i] as Fields) === keyCount(op));
}

function keepSource(frame: SequencedFrame, bytes: Uint8Array): void {
  if (frame.kind === "commit") {
    for (const op of frame.body.ops) Object.freeze(op);
    Object.freeze(frame.body.ops);
    Object.freeze(frame.body.blobs);
  }
  Object.freeze(frame.body);
  sourceBytes.set(frame.body, bytes);
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** Every string of the event is ASCII: then decoding and re-encoding it cannot change a byte. */
function stringsAreAscii(frame: SequencedFrame): boolean {
  switch (frame.kind) {
    case "commit": {
      const b = frame.body;
      return (
        isAscii(b.repo) &&
        isAscii(b.rev) &&
        isAscii(b.time) &&
        (b.since === null || isAscii(b.since)) &&
        b.ops.every((op) => isAscii(op.path))
      );
    }
    case "sync":
      return isAscii(frame.body.did) && isAscii(frame.body.rev) && isAscii(frame.body.time);
    case "identity":
      return (
        isAscii(frame.body.did) &&
        isAscii(frame.body.time) &&
        (frame.body.handle === undefined || isAscii(frame.body.handle))
      );
    case "account":
      return (
        isAscii(frame.body.did) &&
        isAscii(frame.body.time) &&
        (frame.body.status === undefined || isAscii(frame.body.status))
      );
    default:
      return false;
  }
}

/** The upstream's bytes of a frame decoded with only the lexicon's fields, if any. */
function forwardableSource(frame: SequencedFrame): Uint8Array | undefined {
  const bytes = sourceBytes.get(frame.body);
  if (!bytes || !stringsAreAscii(frame)) return undefined;
  // a view into a larger buffer is copied, so that only the frame travels on (RPC, storage)
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : bytes.slice();
}

const KIND_TO_TYPE: Record<Exclude<FrameKind, "error">, string> = {
  commit: "#commit",
  sync: "#sync",
  identity: "#identity",
  account: "#account",
  info: "#info",
};

/** Encodes a frame canonically (optional fields that are absent are left out). */
export function encodeFrame(frame: Frame): Uint8Array {
  const header = frame.kind === "error" ? { op: -1 } : { op: 1, t: KIND_TO_TYPE[frame.kind] };
  const body: Fields = {};
  for (const [k, v] of Object.entries(frame.body)) if (v !== undefined) body[k] = v;
  return concatBytes([encodeDagCbor(header), encodeDagCbor(body)]);
}

export function encodeErrorFrame(error: string, message?: string): Uint8Array {
  return encodeFrame({
    kind: "error",
    body: message === undefined ? { error } : { error, message },
  });
}

export function encodeInfoFrame(name: string, message?: string): Uint8Array {
  return encodeFrame({ kind: "info", body: message === undefined ? { name } : { name, message } });
}

/**
 * The bytes the relay forwards for an accepted event: the frame encoded from its decoded body,
 * so exactly the fields the lexicon defines (an upstream's extra fields, of any size, are left
 * out). `blocks` is a byte string and is copied verbatim; for a frame with no extra fields the
 * result is the upstream's bytes (strict DAG-CBOR has one encoding per value). The cost is one
 * encode, far less than the CID checks that already hash every block.
 */
export function canonicalEventFrame(frame: SequencedFrame): Uint8Array {
  return forwardableSource(frame) ?? encodeFrame(knownFieldsOnly(frame));
}

/** A copy of the frame whose body holds only the lexicon's fields (bodies may be built by hand). */
function knownFieldsOnly(frame: SequencedFrame): SequencedFrame {
  switch (frame.kind) {
    case "commit": {
      const b = frame.body;
      const body: CommitBody = {
        seq: b.seq,
        rebase: b.rebase,
        tooBig: b.tooBig,
        repo: b.repo,
        commit: b.commit,
        rev: b.rev,
        since: b.since,
        blocks: b.blocks,
        ops: b.ops.map((op) => {
          const known: RepoOp = { action: op.action, path: op.path, cid: op.cid };
          if (op.prev) known.prev = op.prev;
          return known;
        }),
        blobs: b.blobs,
        time: b.time,
      };
      if (b.prevData) body.prevData = b.prevData;
      return { kind: "commit", body };
    }
    case "sync": {
      const { seq, did, blocks, rev, time } = frame.body;
      return { kind: "sync", body: { seq, did, blocks, rev, time } };
    }
    case "identity": {
      const { seq, did, time, handle } = frame.body;
      return {
        kind: "identity",
        body: handle === undefined ? { seq, did, time } : { seq, did, time, handle },
      };
    }
    case "account": {
      const { seq, did, time, active, status } = frame.body;
      const body: AccountBody = { seq, did, time, active };
      if (status !== undefined) body.status = status;
      return { kind: "account", body };
    }
    default: {
      const unreachable: never = frame;
      throw invalid(`unhandled frame ${String(unreachable)}`);
    }
  }
}

/** The DID an event is about: `repo` for #commit, `did` for the others. */
export function frameDid(frame: SequencedFrame): string {
  return frame.kind === "commit" ? frame.body.repo : frame.body.did;
}

export function isSequencedFrame(frame: Frame): frame is SequencedFrame {
  return (
    frame.kind === "commit" ||
    frame.kind === "sync" ||
    frame.kind === "identity" ||
    frame.kind === "account"
  );
}
