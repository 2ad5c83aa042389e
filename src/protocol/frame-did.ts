import { isTextKey, readHead, skipItem, textKey } from "./cbor-scan";
import {
  MAX_ACCOUNT_FRAME_BYTES,
  MAX_FRAME_BYTES,
  MAX_IDENTITY_FRAME_BYTES,
  MAX_SYNC_FRAME_BYTES,
} from "./limits";

// The DID an event frame is about, read without decoding it: the ingester looks up the account's
// document while the frame waits in its host's queue (ingest/identity-prefetch.ts), and decoding
// a whole commit (ops, CIDs, blocks) for that was most of the prefetch's cost. This reads the
// header's `op` and `t` and the body's top-level `repo` (#commit) or `did` field by CBOR length
// headers, skipping the rest. It is a hint, nothing more: for a frame decodeFrame accepts it gives
// exactly frameDid(decodeFrame(frame)), and a frame it reads a DID from may still be refused when
// decoded and validated, which stays the only judge. Anything it does not expect gives null.

const OP = textKey("op");
const T = textKey("t");

/** Event types, the body field naming their account, and their frame size limit (limits.ts). */
const EVENT_TYPES: Record<string, { field: Uint8Array; maxBytes: number }> = {
  "#commit": { field: textKey("repo"), maxBytes: MAX_FRAME_BYTES },
  "#sync": { field: textKey("did"), maxBytes: MAX_SYNC_FRAME_BYTES },
  "#identity": { field: textKey("did"), maxBytes: MAX_IDENTITY_FRAME_BYTES },
  "#account": { field: textKey("did"), maxBytes: MAX_ACCOUNT_FRAME_BYTES },
};

/** An ASCII text string at `pos`, or null (another type, or a non-ASCII character). */
function asciiText(buf: Uint8Array, pos: number): string | null {
  const head = readHead(buf, pos);
  if (head.major !== 3) return null;
  const start = pos + head.headerLength;
  const end = start + head.value;
  if (end > buf.length) return null;
  let out = "";
  for (let i = start; i < end; i++) {
    const c = buf[i] as number;
    if (c >= 0x80) return null;
    out += String.fromCharCode(c);
  }
  return out;
}

/** The header's message type if it is `{op: 1, t}`, else null (errors, malformed headers). */
function messageType(frame: Uint8Array): { type: string | null; bodyStart: number } {
  const map = readHead(frame, 0);
  if (map.major !== 5) return { type: null, bodyStart: 0 };
  let pos = map.headerLength;
  let op = false;
  let type: string | null = null;
  for (let i = 0; i < map.value; i++) {
    const key = pos;
    pos = skipItem(frame, pos, 1);
    if (pos - key === OP.length && isTextKey(frame, key, OP)) {
      const value = readHead(frame, pos);
      op = value.major === 0 && value.value === 1;
    } else if (pos - key === T.length && isTextKey(frame, key, T)) type = asciiText(frame, pos);
    pos = skipItem(frame, pos, 1);
  }
  return { type: op ? type : null, bodyStart: pos };
}

/**
 * The `repo` of a #commit or the `did` of a #sync, #identity or #account frame, read by its
 * CBOR headers only (the body's top-level items are skipped to its end, which must be the
 * frame's); null for other frames and for anything malformed on the way.
 */
export function peekEventDid(frame: Uint8Array): string | null {
  try {
    const { type, bodyStart } = messageType(frame);
    const event = type === null ? undefined : EVENT_TYPES[type];
    if (!event || frame.byteLength > event.maxBytes) return null;
    const map = readHead(frame, bodyStart);
    if (map.major !== 5) return null;
    let pos = bodyStart + map.headerLength;
    let did: string | null = null;
    for (let i = 0; i < map.value; i++) {
      const key = pos;
      pos = skipItem(frame, pos, 1);
      if (pos - key === event.field.length && isTextKey(frame, key, event.field))
        did = asciiText(frame, pos);
      pos = skipItem(frame, pos, 1);
    }
    // the body must end the frame, as decodeFrame requires: a truncated frame gives no hint
    return pos === frame.byteLength ? did : null;
  } catch {
    return null; // truncated or nested too deeply: decodeFrame will say what is wrong
  }
}
