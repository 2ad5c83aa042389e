/// <reference path="./wasm-modules.d.ts" />

// secp256k1 ECDSA verification by libsecp256k1 (bitcoin-core/secp256k1, through the Rust crate
// secp256k1-sys 0.8.1) compiled to WebAssembly, as shipped in the `tiny-secp256k1` 2.2.4 npm
// package (MIT). We use only its `.wasm` and call the module's exports directly: the package's
// JavaScript loader reads the file with `fs` in Node and cannot load in workerd, which compiles
// WebAssembly only from modules bundled with the Worker (runtime compilation is disallowed).
// Measured here: ~3,300-4,500 verifies/s on one core against ~700-800 for @noble/curves with a
// key seen for the first time (docs/benchmarks.md). Licence and audit notes: docs/benchmarks.md.
//
// The module is loaded once, when this file is first imported (top-level await): in workerd from
// the bundled module, in Node from the file next to the package.

export type Secp256k1Verifier = {
  /**
   * True when `signature` (64-byte compact r || s, low-S) signs `hash` (32 bytes) under
   * `publicKey` (33-byte compressed or 65-byte uncompressed SEC1 point). Never throws.
   */
  verify(hash: Uint8Array, publicKey: Uint8Array, signature: Uint8Array): boolean;
  /** The 65-byte uncompressed form of a valid point (parsing it skips a square root), or null. */
  uncompressed(publicKey: Uint8Array): Uint8Array | null;
  /** The 33-byte compressed form of a valid point, or null. */
  compressed(publicKey: Uint8Array): Uint8Array | null;
};

type Secp256k1Exports = {
  memory: { buffer: ArrayBuffer };
  HASH_INPUT: { value: number };
  PUBLIC_KEY_INPUT: { value: number };
  SIGNATURE_INPUT: { value: number };
  verify(publicKeyLength: number, strict: number): number;
  pointCompress(publicKeyLength: number, outputLength: number): void;
};

type WebAssemblyApi = {
  Module: new (bytes: Uint8Array) => unknown;
  Instance: new (module: unknown, imports: object) => { exports: unknown };
};

type RuntimeGlobals = {
  WebAssembly: WebAssemblyApi;
  URL: new (url: string, base: string) => object;
  navigator?: { userAgent?: string };
  crypto: { getRandomValues(array: Int32Array): Int32Array };
};

const runtime = globalThis as unknown as RuntimeGlobals;

const HASH_BYTES = 32;
const SIGNATURE_BYTES = 64;
const COMPRESSED_POINT_BYTES = 33;
const UNCOMPRESSED_POINT_BYTES = 65;
// `strict` = 1: libsecp256k1 verifies the signature as given; with 0 it would first normalise a
// high-S signature to low-S and accept it, which atproto forbids.
const STRICT = 1;

/** Makes a verifier from the compiled libsecp256k1 module of tiny-secp256k1. */
export function secp256k1FromWasm(compiled: unknown): Secp256k1Verifier {
  const imports = {
    // seeds the context's blinding (used when signing; verification does not depend on it).
    // Called lazily on first use, which in workerd is inside a request, where randomness is allowed.
    "./rand.js": {
      generateInt32: () => runtime.crypto.getRandomValues(new Int32Array(1))[0] ?? 0,
    },
    // invalid input (a point not on the curve, r or s not below the order) is reported by throwing
    "./validate_error.js": {
      throwError: (code: number) => {
        throw new RangeError(`libsecp256k1 rejected its input (code ${code})`);
      },
    },
  };
  const exports = new runtime.WebAssembly.Instance(compiled, imports).exports as Secp256k1Exports;
  const hashAt = exports.HASH_INPUT.value;
  const publicKeyAt = exports.PUBLIC_KEY_INPUT.value;
  const signatureAt = exports.SIGNATURE_INPUT.value;
  // the memory never grows (the module allocates nothing), but a fresh view per call is cheap
  const memory = () => new Uint8Array(exports.memory.buffer);
  const isPointLength = (n: number) =>
    n === COMPRESSED_POINT_BYTES || n === UNCOMPRESSED_POINT_BYTES;

  /** Parses a point (rejecting one not on the curve) and writes it back in `length` bytes. */
  const serialize = (publicKey: Uint8Array, length: number): Uint8Array | null => {
    if (!isPointLength(publicKey.byteLength)) return null;
    const bytes = memory();
    bytes.set(publicKey, publicKeyAt);
    try {
      // throws (through throwError) when the bytes are not a point on the curve
      exports.pointCompress(publicKey.byteLength, length);
      return bytes.slice(publicKeyAt, publicKeyAt + length);
    } catch {
      return null;
    }
  };

  return {
    verify(hash, publicKey, signature) {
      if (hash.byteLength !== HASH_BYTES || signature.byteLength !== SIGNATURE_BYTES) return false;
      if (!isPointLength(publicKey.byteLength)) return false;
      const bytes = memory();
      bytes.set(hash, hashAt);
      bytes.set(publicKey, publicKeyAt);
      bytes.set(signature, signatureAt);
      try {
        return exports.verify(publicKey.byteLength, STRICT) === 1;
      } catch {
        return false;
      }
    },
    uncompressed(publicKey) {
      return serialize(publicKey, UNCOMPRESSED_POINT_BYTES);
    },
    compressed(publicKey) {
      return serialize(publicKey, COMPRESSED_POINT_BYTES);
    },
  };
}

/**
 * The compiled module. workerd (`wrangler dev`, Cloudflare, the vitest pool) only runs
 * WebAssembly bundled with the Worker: the import below is the bundled module. Node (core tests,
 * benchmarks, scripts) compiles the same file from disk. The path goes through node_modules
 * because the package's `exports` map does not list the `.wasm`.
 */
async function compiledModule(): Promise<unknown> {
  if (runtime.navigator?.userAgent === "Cloudflare-Workers") {
    return (await import("../../node_modules/tiny-secp256k1/lib/secp256k1.wasm")).default;
  }
  // Node only; a computed specifier keeps bundlers from pulling `node:fs` into the Worker
  const fsModule = "node:fs/promises";
  const fs = (await import(/* @vite-ignore */ fsModule)) as {
    readFile(url: object): Promise<Uint8Array>;
  };
  const here = (import.meta as unknown as { url: string }).url;
  const file = new runtime.URL("../../node_modules/tiny-secp256k1/lib/secp256k1.wasm", here);
  return new runtime.WebAssembly.Module(await fs.readFile(file));
}

/** libsecp256k1, ready when this module has been imported. */
export const secp256k1Wasm: Secp256k1Verifier = secp256k1FromWasm(await compiledModule());
