import { type CID, decodeCid } from "./cid";

// Fast paths for the few fixed layouts the relay decodes per event (MST nodes, commits): a reader
// that follows one canonical DAG-CBOR layout byte by byte (minimal heads only) and gives up, by
// throwing NOT_FAST, at anything else, so that the caller hands the bytes to the general strict
// decoder, which accepts or rejects them as before.

const NULL = 0xf6;
const TAG_42 = [0xd8, 0x2a] as const;

/** Thrown inside a fast path on any layout it does not take; never escapes its caller. */
export const NOT_FAST = Symbol("not the canonical node layout");

/** Reads one fixed canonical layout; throws NOT_FAST at the first byte off it. */
export class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}

  byte(): number {
    const b = this.bytes[this.pos++];
    if (b === undefined) throw NOT_FAST;
    return b;
  }

  /** A minimal head of major type `major`; returns its argument (at most 32 bits). */
  head(major: number): number {
    const initial = this.byte();
    if (initial >> 5 !== major) throw NOT_FAST;
    const info = initial & 0x1f;
    if (info < 24) return info;
    if (info === 24) {
      const n = this.byte();
      if (n < 24) throw NOT_FAST;
      return n;
    }
    if (info === 25) {
      const n = (this.byte() << 8) | this.byte();
      if (n < 0x100) throw NOT_FAST;
      return n;
    }
    if (info === 26) {
      const n = this.byte() * 0x1000000 + ((this.byte() << 16) | (this.byte() << 8) | this.byte());
      if (n < 0x10000) throw NOT_FAST;
      return n;
    }
    throw NOT_FAST;
  }

  key(code: number): void {
    if (this.byte() !== 0x61 || this.byte() !== code) throw NOT_FAST;
  }

  bytesOf(length: number): Uint8Array {
    const end = this.pos + length;
    if (end > this.bytes.length) throw NOT_FAST;
    const out = this.bytes.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  cid(): CID {
    if (this.byte() !== TAG_42[0] || this.byte() !== TAG_42[1]) throw NOT_FAST;
    const length = this.head(2);
    const content = this.bytesOf(length);
    if (content[0] !== 0x00) throw NOT_FAST;
    try {
      return decodeCid(content.subarray(1));
    } catch {
      throw NOT_FAST;
    }
  }

  /** A text string of ASCII characters only (any other is left to the general decoder). */
  ascii(): string {
    const bytes = this.bytesOf(this.head(3));
    let out = "";
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i] as number;
      if (c >= 0x80) throw NOT_FAST;
      out += String.fromCharCode(c);
    }
    return out;
  }

  cidOrNull(): CID | null {
    if (this.bytes[this.pos] === NULL) {
      this.pos++;
      return null;
    }
    return this.cid();
  }
}
