import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Benchmarks that must run inside workerd (real DO SQLite, local R2). Not part of `npm test`:
// bench/run.ts starts them with this config and prints their figures.
export default defineConfig({
  // the project's root, not bench/: modules outside the root get `/@fs/` ids that the pool cannot
  // load as wasm (tiny-secp256k1's), the same failure as in a worktree with symlinked modules
  root: fileURLToPath(new URL("..", import.meta.url)),
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          DEV_MODE: "true",
          SEGMENT_MAX_BYTES: String(8 * 1024 * 1024),
          CONSUMER_MIN_BYTES_PER_SECOND: String(1024 * 1024 * 1024),
          CONSUMER_MAX_BACKLOG_BYTES: String(2 * 1024 * 1024 * 1024),
        },
      },
    }),
  ],
  test: {
    include: ["bench/workers/**/*.bench-run.ts"],
    testTimeout: 300_000,
    fileParallelism: false,
  },
});
