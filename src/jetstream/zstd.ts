/// <reference path="../protocol/wasm-modules.d.ts" />
import { Module as zstdRuntime } from "../../node_modules/@bokuweb/zstd-wasm/dist/esm/module.js";
import { JETSTREAM_ZSTD_DICTIONARY } from "./zstd-dictionary";

// zstd for `/subscribe?compress=true`: libzstd compiled to WebAssembly by @bokuweb/zstd-wasm
// (MIT). Its loader fetches the .wasm by URL, which workerd cannot do; Emscripten's
// `instantiateWasm` hook lets us hand it the module the Worker bundle already holds instead.
// The dictionary is copied into the WebAssembly heap once and stays there: the package's own
// compressUsingDict copies it (112 KB) on every call. libzstd writes the dictionary's ID in each
// frame header, as Jetstream's encoder does.

/** The WebAssembly API, typed here: not every tsconfig of the project has its types. */
type WasmModule = object;
type WasmInstance = { exports: object };
const wasmApi = (
  globalThis as unknown as {
    WebAssembly: {
      Module: new (bytes: Uint8Array) => WasmModule;
      Instance: new (module: WasmModule, imports: object) => WasmInstance;
    };
  }
).WebAssembly;

/** The functions of the build we call (Emscripten's names; sizes and pointers are numbers). */
type ZstdRuntime = {
  init(path?: string): unknown;
  instantiateWasm?: (imports: object, receive: (instance: WasmInstance) => unknown) => unknown;
  calledRun?: boolean;
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  _ZSTD_isError(code: number): number;
  _ZSTD_compressBound(size: number): number;
  _ZSTD_createCCtx(): number;
  _ZSTD_compress_usingDict(
    cctx: number,
    dst: number,
    dstCapacity: number,
    src: number,
    srcSize: number,
    dict: number,
    dictSize: number,
    level: number,
  ): number;
  _ZSTD_createDCtx(): number;
  _ZSTD_getFrameContentSize(src: number, srcSize: number): number;
  _ZSTD_decompress_usingDict(
    dctx: number,
    dst: number,
    dstCapacity: number,
    src: number,
    srcSize: number,
    dict: number,
    dictSize: number,
  ): number;
};

/**
 * Level 1, not Jetstream v1's default (3): with a dictionary most of the cost is loading it into
 * the match tables on every call, and level 1's are smaller; measured on a post, 41 µs instead
 * of 84 µs for 200 B instead of 191 B. Any level decodes the same way; Jetstream's own v2 chose
 * its fastest level for the same reason.
 */
const LEVEL = 1;

export type JetstreamZstd = {
  /** `text` as UTF-8, compressed into one zstd frame with Jetstream's dictionary. */
  compress(text: string): Uint8Array;
  /** The reverse (what a Jetstream client does); for tests and benchmarks. */
  decompress(frame: Uint8Array): string;
};

/**
 * The compiled module. workerd (`wrangler dev`, Cloudflare, the vitest pool) only runs
 * WebAssembly bundled with the Worker: the import below is the bundled module. Node (core tests,
 * benchmarks) compiles the same file from disk. The path goes through node_modules because the
 * package's `exports` map does not list the `.wasm`.
 */
async function compiledModule(): Promise<WasmModule> {
  const runtime = globalThis as unknown as { navigator?: { userAgent?: string } };
  if (runtime.navigator?.userAgent === "Cloudflare-Workers") {
    return (await import("../../node_modules/@bokuweb/zstd-wasm/dist/esm/zstd.wasm"))
      .default as WasmModule;
  }
  // Node only; a computed specifier keeps bundlers from pulling `node:fs` into the Worker
  const fsModule = "node:fs/promises";
  const fs = (await import(/* @vite-ignore */ fsModule)) as {
    readFile(url: URL): Promise<Uint8Array>;
  };
  const here = (import.meta as unknown as { url: string }).url;
  const file = new URL("../../node_modules/@bokuweb/zstd-wasm/dist/esm/zstd.wasm", here);
  return new wasmApi.Module(await fs.readFile(file));
}

async function load(): Promise<JetstreamZstd> {
  const zstd = zstdRuntime as ZstdRuntime;
  const wasm = await compiledModule();
  zstd.instantiateWasm = (imports, receive) => receive(new wasmApi.Instance(wasm, imports));
  zstd.init();
  // the hook is synchronous, so the runtime has started by now; if not, the build changed
  if (!zstd.calledRun) throw new Error("zstd runtime did not start");

  const dictSize = JETSTREAM_ZSTD_DICTIONARY.byteLength;
  const dict = zstd._malloc(dictSize);
  zstd.HEAPU8.set(JETSTREAM_ZSTD_DICTIONARY, dict);
  const cctx = zstd._ZSTD_createCCtx();
  const dctx = zstd._ZSTD_createDCtx();
  const utf8 = new TextEncoder();
  const fromUtf8 = new TextDecoder();

  // Each call mallocs and frees its buffers; HEAPU8 is read after each malloc, since a malloc
  // may grow the memory and replace the view.
  return {
    compress(text) {
      const input = utf8.encode(text);
      const bound = zstd._ZSTD_compressBound(input.byteLength);
      const src = zstd._malloc(input.byteLength);
      const dst = zstd._malloc(bound);
      try {
        zstd.HEAPU8.set(input, src);
        const size = zstd._ZSTD_compress_usingDict(
          cctx,
          dst,
          bound,
          src,
          input.byteLength,
          dict,
          dictSize,
          LEVEL,
        );
        if (zstd._ZSTD_isError(size)) throw new Error(`zstd compression failed (${size})`);
        return zstd.HEAPU8.slice(dst, dst + size);
      } finally {
        zstd._free(src);
        zstd._free(dst);
      }
    },
    decompress(frame) {
      const src = zstd._malloc(frame.byteLength);
      zstd.HEAPU8.set(frame, src);
      const capacity = zstd._ZSTD_getFrameContentSize(src, frame.byteLength);
      // our frames always record their size; "unknown" (-1) or "error" (-2) is not one of ours
      if (capacity < 0) {
        zstd._free(src);
        throw new Error("zstd frame without a content size");
      }
      const dst = zstd._malloc(Math.max(capacity, 1));
      try {
        const size = zstd._ZSTD_decompress_usingDict(
          dctx,
          dst,
          capacity,
          src,
          frame.byteLength,
          dict,
          dictSize,
        );
        if (zstd._ZSTD_isError(size)) throw new Error(`zstd decompression failed (${size})`);
        return fromUtf8.decode(zstd.HEAPU8.subarray(dst, dst + size));
      } finally {
        zstd._free(src);
        zstd._free(dst);
      }
    },
  };
}

let loading: Promise<JetstreamZstd> | null = null;
let ready: JetstreamZstd | null = null;

/** Loads the compressor (once per isolate; it is only loaded where some consumer asks for it). */
export function loadJetstreamZstd(): Promise<JetstreamZstd> {
  loading ??= load().then((zstd) => {
    ready = zstd;
    return zstd;
  });
  return loading;
}

/** The compressor if it has been loaded, else null. */
export function jetstreamZstd(): JetstreamZstd | null {
  return ready;
}
