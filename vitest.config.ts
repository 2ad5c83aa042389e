import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Four projects, one per rung of the testing ladder (DESIGN.md) and the fault suite:
// core runs the pure protocol code in plain Node, workers runs the Worker and
// Durable Objects inside workerd, integration drives `wrangler dev` from Node
// against real reference PDS hosts and real consumers.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "core",
          environment: "node",
          include: ["test/core/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                PLC_URL: inject("plcUrl"),
                DEV_MODE: "true",
                ADMIN_TOKEN: "test-admin-token",
                // small segments and a small consumer budget so tests cross those edges quickly
                SEGMENT_MAX_BYTES: "200000",
                CONSUMER_MAX_BACKLOG_BYTES: "3000000",
                CONSUMER_MIN_BYTES_PER_SECOND: "1000000",
                HOST_IDLE_AFTER_SECONDS: "3",
                // more index shards than the default, so paging across shards is exercised
                REPO_INDEX_SHARDS: "8",
                HOST_STALL_AFTER_SECONDS: "2",
                // an ingester's queue over all its hosts: small, so that a few hosts fill it
                // (test/workers/ingest-queue.test.ts), but above one oversized frame (5 MB) and
                // one host's 500-frame flood, which meet their own limits first
                INGEST_QUEUE_MAX_BYTES: "6000000",
                // the shard counts these tests were written with (more than the defaults), so
                // hosts and consumers still spread over several objects
                INGEST_SHARDS: "4",
                FANOUT_SHARDS: "2",
                // every test crawls from one client ("local"): the per-IP limit is tested with
                // its own configuration (crawl-limits.test.ts)
                REQUEST_CRAWL_PER_IP_PER_MINUTE: "100000",
              },
            },
          })),
        ],
        test: {
          name: "workers",
          // console straight to stdout: a log line emitted while a file's worker closes must not
          // fail a green run (vitest-dev/vitest#11153, "Closing rpc while onUserConsoleLog was pending")
          disableConsoleIntercept: true,
          include: ["test/workers/**/*.test.ts"],
          globalSetup: ["test/support/workers-global-setup.ts"],
          testTimeout: 60_000,
        },
      },
      {
        // the relay with several PLC directories, the first one a mirror the tests take down
        // (docs/independence.md); its own project because PLC_URL is read at start
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                PLC_URL: `${inject("plcMirrorUrl")},${inject("plcUrl")}`,
                PLC_RETRY_AFTER_SECONDS: "8",
                DEV_MODE: "true",
                ADMIN_TOKEN: "test-admin-token",
                // one ingester, so every host's look-ups share one object's PLC source health
                INGEST_SHARDS: "1",
              },
            },
          })),
        ],
        test: {
          name: "workers-plc",
          disableConsoleIntercept: true, // as in the workers project
          include: ["test/workers-plc/**/*.test.ts"],
          globalSetup: ["test/support/workers-global-setup.ts"],
          testTimeout: 120_000,
        },
      },
      {
        test: {
          name: "integration",
          environment: "node",
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 240_000,
          hookTimeout: 240_000,
          fileParallelism: false,
        },
      },
      {
        // `npm run cost`: the billed-unit workload (test/cost, docs/cost.md), with the default
        // settings except a short host report window, so reports happen within the run
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                PLC_URL: inject("plcUrl"),
                DEV_MODE: "true",
                ADMIN_TOKEN: "test-admin-token",
                HOST_REPORT_INTERVAL_SECONDS: "3",
                REQUEST_CRAWL_PER_IP_PER_MINUTE: "100000",
              },
            },
          })),
        ],
        test: {
          name: "cost",
          disableConsoleIntercept: true, // as in the workers project
          include: ["test/cost/**/*.test.ts"],
          globalSetup: ["test/cost/cost-setup.ts"],
          testTimeout: 240_000,
        },
      },
      {
        // kill -9 of `wrangler dev` at seeded moments (test/faults, docs/testing.md); one relay
        // and one PDS network at a time
        test: {
          name: "faults",
          environment: "node",
          include: ["test/faults/**/*.test.ts"],
          testTimeout: 240_000,
          hookTimeout: 240_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
