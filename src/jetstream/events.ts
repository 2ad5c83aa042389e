import { decodeDagCbor } from "../protocol/cbor";
import type { CID } from "../protocol/cid";
import { dataModelToJson } from "../protocol/data-model";
import { decodeFrame } from "../protocol/frame";
import type { JetstreamFilter } from "./filter";

// One relay event as Jetstream's JSON messages (its v1 `/subscribe` wire):
//   {"did","time_us","kind":"commit","commit":{"rev","operation","collection","rkey","record","cid"}}
//   one per op; `record` and `cid` only for create and update;
//   {"did","time_us","kind":"identity","identity":{"did","handle"?,"seq","time"}}
//   {"did","time_us","kind":"account","account":{"active","did","seq","status"?,"time"}}
// `#sync` is not on Jetstream's v1 wire, so it yields nothing. A JetstreamEvent is made once per
// stored event and shared by every consumer of a Fanout: the frame is decoded on first use, and
// a message body is built only when some consumer wants it, then reused (`time_us` is set per
// send, so only that part is written per consumer).

type Op = { collection: string; rkey: string; action: string; cid: CID | null };

type Decoded =
  | { kind: "commit"; did: string; rev: string; blocks: Uint8Array; ops: Op[] }
  | { kind: "identity" | "account"; did: string; payload: string }
  | { kind: "skip"; did: string };

/**
 * A message the consumer's filter lets through, before `time_us` is known; `index` tells the
 * messages of one event apart (the op's index, 0 for identity and account).
 */
export type PendingMessage = { prefix: string; body: string; index: number };

export class JetstreamEvent {
  readonly seq: number;
  readonly #frame: Uint8Array;
  #decoded: Decoded | null = null;
  /** Bodies per op index (commit) or at 0 (identity, account); null: the op yields nothing. */
  readonly #bodies = new Map<number, string | null>();

  constructor(seq: number, frame: Uint8Array) {
    this.seq = seq;
    this.#frame = frame;
  }

  #decode(): Decoded {
    if (this.#decoded) return this.#decoded;
    const frame = decodeFrame(this.#frame);
    switch (frame.kind) {
      case "commit": {
        const ops: Op[] = [];
        for (const op of frame.body.ops) {
          const slash = op.path.indexOf("/");
          ops.push({
            collection: slash === -1 ? op.path : op.path.slice(0, slash),
            rkey: slash === -1 ? "" : op.path.slice(slash + 1),
            action: op.action,
            cid: op.cid,
          });
        }
        this.#decoded = {
          kind: "commit",
          did: frame.body.repo,
          rev: frame.body.rev,
          blocks: frame.body.blocks,
          ops,
        };
        break;
      }
      case "identity": {
        const { did, handle, seq, time } = frame.body;
        const payload = handle === undefined ? { did, seq, time } : { did, handle, seq, time };
        this.#decoded = {
          kind: "identity",
          did,
          payload: `,"kind":"identity","identity":${JSON.stringify(payload)}}`,
        };
        break;
      }
      case "account": {
        const { active, did, seq, status, time } = frame.body;
        const payload =
          status === undefined ? { active, did, seq, time } : { active, did, seq, status, time };
        this.#decoded = {
          kind: "account",
          did,
          payload: `,"kind":"account","account":${JSON.stringify(payload)}}`,
        };
        break;
      }
      default:
        this.#decoded = { kind: "skip", did: "" };
    }
    return this.#decoded;
  }

  /** The messages `filter` wants from this event, in op order. */
  messagesFor(filter: JetstreamFilter): PendingMessage[] {
    const event = this.#decode();
    if (event.kind === "skip" || !filter.wantsDid(event.did)) return [];
    const prefix = `{"did":${JSON.stringify(event.did)},"time_us":`;
    if (event.kind !== "commit") return [{ prefix, body: event.payload, index: 0 }];
    const out: PendingMessage[] = [];
    event.ops.forEach((op, index) => {
      if (!filter.wantsCollection(op.collection)) return;
      const body = this.#commitBody(event, op, index);
      if (body !== null) out.push({ prefix, body, index });
    });
    return out;
  }

  #commitBody(event: Extract<Decoded, { kind: "commit" }>, op: Op, index: number): string | null {
    const known = this.#bodies.get(index);
    if (known !== undefined) return known;
    let body: string | null = null;
    const head = `,"kind":"commit","commit":{"rev":${JSON.stringify(event.rev)},"operation":${JSON.stringify(op.action)},"collection":${JSON.stringify(op.collection)},"rkey":${JSON.stringify(op.rkey)}`;
    if (op.action === "delete") body = `${head}}}`;
    else if (op.cid !== null) {
      const block = this.#block(event.blocks, op.cid);
      // a create or update whose record is not in the commit (e.g. a tooBig commit) has no
      // record to show; Jetstream would have none either, so the op is left out
      if (block !== undefined) {
        const record = JSON.stringify(dataModelToJson(decodeDagCbor(block)));
        body = `${head},"record":${record},"cid":${JSON.stringify(op.cid.toString())}}}`;
      }
    }
    this.#bodies.set(index, body);
    return body;
  }

  #block(car: Uint8Array, cid: CID): Uint8Array | undefined {
    return findCarBlock(car, cid.bytes);
  }
}

/** A message with its `time_us`: the text sent to the consumer. */
export function finishMessage(message: PendingMessage, timeUs: number): string {
  return `${message.prefix}${timeUs}${message.body}`;
}

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let value = 0;
  let shift = 1;
  for (let i = pos; i < pos + 8 && i < buf.length; i++) {
    const b = buf[i] as number;
    value += (b & 0x7f) * shift;
    if ((b & 0x80) === 0) return [value, i + 1];
    shift *= 128;
  }
  throw new Error("truncated varint in CAR");
}

/**
 * The block of a CAR whose CID is `cid` (its binary form). The ingester verified every block
 * against its CID before the event was sequenced, so nothing is hashed or parsed here: a
 * section whose leading bytes are the CID holds the block after them.
 */
function findCarBlock(car: Uint8Array, cid: Uint8Array): Uint8Array | undefined {
  const [headerLength, headerStart] = readVarint(car, 0);
  let pos = headerStart + headerLength;
  while (pos < car.length) {
    const [length, start] = readVarint(car, pos);
    const end = start + length;
    if (length > cid.length && startsWith(car, start, cid))
      return car.subarray(start + cid.length, end);
    pos = end;
  }
  return undefined;
}

function startsWith(bytes: Uint8Array, at: number, prefix: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}
