import { decodeFirst, encode, Token, Tokenizer, Type } from "cborg";
import { CID } from "multiformats/cid";
import { ProtocolError } from "./errors";
import { MAX_CBOR_DEPTH } from "./limits";

// The one strict DAG-CBOR profile of freehose (atproto data model): definite lengths, minimal
// integers and lengths, string map keys in canonical order (length first, then bytewise) with
// no duplicates, no floats, no undefined, and no tag but 42 (CID links, bytes with a leading
// 0x00). cborg checks minimality (`strict`) but not key order, floats or tags in the way
// atproto needs, so a tokenizer wrapper checks those as tokens stream by: one pass, no
// re-encoding.

const CID_TAG = 42;

interface OpenContainer {
  /** Items still expected; a map counts keys and values. */
  remaining: number;
  isMap: boolean;
  /** Byte range of the previous key in this map, to check canonical order. */
  lastKeyStart: number;
  lastKeyEnd: number;
}

class StrictDagCborTokenizer {
  readonly #inner: Tokenizer;
  readonly #data: Uint8Array;
  readonly #open: OpenContainer[] = [];

  constructor(data: Uint8Array) {
    this.#data = data;
    this.#inner = new Tokenizer(data, DECODE_OPTIONS_BASE);
  }

  done(): boolean {
    return this.#inner.done();
  }

  pos(): number {
    return this.#inner.pos();
  }

  next(): Token {
    const start = this.#inner.pos();
    const token = this.#inner.next();
    const end = this.#inner.pos();
    const top = this.#open[this.#open.length - 1];
    if (top?.isMap && top.remaining % 2 === 0) this.#checkKey(top, token, start, end);
    const type = token.type;
    if (Type.equals(type, Type.float)) {
      throw new ProtocolError(
        "UnsupportedCborType",
        "floats are not allowed in the atproto data model",
      );
    }
    if (Type.equals(type, Type.undefined)) {
      throw new ProtocolError("UnsupportedCborType", "undefined is not allowed in DAG-CBOR");
    }
    if (Type.equals(type, Type.break)) {
      throw new ProtocolError("NonCanonicalCbor", "indefinite-length items are not allowed");
    }
    if (Type.equals(type, Type.tag)) {
      if (token.value !== CID_TAG) {
        throw new ProtocolError(
          "UnsupportedCborType",
          `CBOR tag ${String(token.value)} is not allowed`,
        );
      }
      this.#push(1, false);
    } else if (Type.equals(type, Type.array) || Type.equals(type, Type.map)) {
      const count = token.value as number;
      const isMap = Type.equals(type, Type.map);
      if (count > 0) this.#push(isMap ? count * 2 : count, isMap);
      else this.#completeItem();
    } else {
      this.#completeItem();
    }
    return token;
  }

  #checkKey(map: OpenContainer, token: Token, start: number, end: number): void {
    if (!Type.equals(token.type, Type.string)) {
      throw new ProtocolError("UnsupportedCborType", "map keys must be strings");
    }
    if (map.lastKeyEnd > 0) {
      const order = compareBytes(this.#data, map.lastKeyStart, map.lastKeyEnd, start, end);
      if (order === 0) throw new ProtocolError("InvalidCbor", `duplicate map key "${token.value}"`);
      if (order > 0) {
        throw new ProtocolError(
          "NonCanonicalCbor",
          `map key "${token.value}" is out of canonical order`,
        );
      }
    }
    map.lastKeyStart = start;
    map.lastKeyEnd = end;
  }

  #push(remaining: number, isMap: boolean): void {
    if (this.#open.length >= MAX_CBOR_DEPTH) {
      throw new ProtocolError("InvalidCbor", `nesting deeper than ${MAX_CBOR_DEPTH}`);
    }
    this.#open.push({ remaining, isMap, lastKeyStart: 0, lastKeyEnd: 0 });
  }

  #completeItem(): void {
    for (;;) {
      const top = this.#open[this.#open.length - 1];
      if (!top) return;
      top.remaining -= 1;
      if (top.remaining > 0) return;
      this.#open.pop();
    }
  }
}

/**
 * Canonical key order compares the keys' whole encodings bytewise: with minimal headers that is
 * "shorter first, then bytewise", the DAG-CBOR rule.
 */
function compareBytes(
  data: Uint8Array,
  aStart: number,
  aEnd: number,
  bStart: number,
  bEnd: number,
): number {
  const aLen = aEnd - aStart;
  const bLen = bEnd - bStart;
  const n = Math.min(aLen, bLen);
  for (let i = 0; i < n; i++) {
    const d = (data[aStart + i] as number) - (data[bStart + i] as number);
    if (d !== 0) return d;
  }
  return aLen - bLen;
}

function decodeCidTag(decode: () => unknown): CID {
  const bytes = decode();
  if (!(bytes instanceof Uint8Array) || bytes[0] !== 0x00) {
    throw new ProtocolError("InvalidCid", "tag 42 must hold bytes starting with 0x00");
  }
  try {
    return CID.decode(bytes.subarray(1));
  } catch (err) {
    throw new ProtocolError("InvalidCid", "tag 42 does not hold a valid CID", { cause: err });
  }
}

const DECODE_OPTIONS_BASE = {
  allowIndefinite: false,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
  strict: true,
  useMaps: false,
  rejectDuplicateMapKeys: true,
} as const;

function toProtocolError(err: unknown): ProtocolError {
  if (err instanceof ProtocolError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/minimal|smallest|more bytes than necessary|strict decode/i.test(message))
    return new ProtocolError("NonCanonicalCbor", message, { cause: err });
  if (/indefinite/i.test(message))
    return new ProtocolError("NonCanonicalCbor", message, { cause: err });
  if (/too many terminals/i.test(message))
    return new ProtocolError("TrailingBytes", message, { cause: err });
  if (/float|undefined|tag|NaN|Infinity|bigint|BigInt/i.test(message)) {
    return new ProtocolError("UnsupportedCborType", message, { cause: err });
  }
  return new ProtocolError("InvalidCbor", message, { cause: err });
}

/** Decodes one DAG-CBOR value and returns it with the bytes that follow it. */
export function decodeDagCborFirst(bytes: Uint8Array): [unknown, Uint8Array] {
  try {
    const tokenizer = new StrictDagCborTokenizer(bytes);
    return decodeFirst(bytes, {
      ...DECODE_OPTIONS_BASE,
      tags: { [CID_TAG]: decodeCidTag },
      tokenizer,
    });
  } catch (err) {
    throw toProtocolError(err);
  }
}

/** Decodes exactly one DAG-CBOR value: trailing bytes are an error. */
export function decodeDagCbor(bytes: Uint8Array): unknown {
  const [value, rest] = decodeDagCborFirst(bytes);
  if (rest.length > 0)
    throw new ProtocolError("TrailingBytes", `${rest.length} bytes after the value`);
  return value;
}

function encodeCid(cid: unknown): Token[] | null {
  const asCid = CID.asCID(cid);
  if (!asCid) return null;
  const bytes = new Uint8Array(asCid.bytes.byteLength + 1);
  bytes.set(asCid.bytes, 1);
  return [new Token(Type.tag, CID_TAG), new Token(Type.bytes, bytes)];
}

function refuseUndefined(): never {
  throw new ProtocolError("UnsupportedCborType", "undefined cannot be encoded as DAG-CBOR");
}

function refuseNumber(n: unknown): null {
  if (typeof n === "number" && !Number.isSafeInteger(n)) {
    throw new ProtocolError("UnsupportedCborType", `only safe integers are allowed, got ${n}`);
  }
  return null;
}

const ENCODE_OPTIONS = {
  float64: true,
  typeEncoders: {
    Object: encodeCid,
    undefined: refuseUndefined,
    number: refuseNumber,
  },
};

/** Canonical DAG-CBOR encoding (cborg sorts map keys length-first by default). */
export function encodeDagCbor(value: unknown): Uint8Array {
  try {
    return encode(value, ENCODE_OPTIONS);
  } catch (err) {
    throw toProtocolError(err);
  }
}
