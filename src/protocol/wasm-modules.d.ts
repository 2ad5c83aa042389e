// A `.wasm` import is compiled ahead of time by the Workers runtime (wrangler and the vitest
// pool bundle it as a WebAssembly.Module). Pure code has no WebAssembly types, so it is opaque.
declare module "*.wasm" {
  const compiled: unknown;
  export default compiled;
}
