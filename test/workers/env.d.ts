import type { Env as RelayEnv } from "../../src/env";

// `env` from cloudflare:test carries the relay's bindings.
declare global {
  namespace Cloudflare {
    interface Env extends RelayEnv {}
  }
}
