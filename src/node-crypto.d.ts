// The part of `node:crypto` the relay uses (relay-sha256.ts). workerd provides the module with the
// nodejs_compat flag (wrangler.toml); the Worker's types are @cloudflare/workers-types, which do
// not declare Node's modules. Test and bench code in Node gets the full @types/node instead.
declare module "node:crypto" {
  type Hash = { update(data: Uint8Array): Hash; digest(): Uint8Array };
  export function createHash(algorithm: "sha256"): Hash;
}
