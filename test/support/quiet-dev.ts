import { getNodeCompat } from "miniflare";
import { unstable_startWorker } from "wrangler";
import type { LaunchArgs } from "./relay-process";

// The relay as `wrangler dev` runs it (same wrangler.toml, bundling, bindings, local Durable
// Object SQLite and R2 persisted to a directory, vars, port on 127.0.0.1), but without the
// inspector. `wrangler dev` always enables it, and wrangler's InspectorProxyWorker then turns on
// `Network.enable` in the runtime and posts every DevTools message of the runtime to wrangler's
// Node process over HTTP, whatever the log level: four POSTs per outbound fetch of the relay
// (docs/benchmarks.md, "Without wrangler's DevTools"). Production runs none of this.
//
// Started by startRelay({ devTools: false }) as the leader of its own process group; it stays up
// until SIGTERM or SIGINT. Its argument is one JSON object (LaunchArgs).

const args = JSON.parse(process.argv[2] ?? "{}") as LaunchArgs;

const worker = await unstable_startWorker({
  config: args.config ?? "wrangler.toml",
  ...(args.entry ? { entrypoint: args.entry } : {}),
  build: {
    // what `wrangler dev` passes (its validateNodeCompatMode: miniflare's reading of the
    // config's date and flags); the API's default, none, bundles node: imports differently
    nodejsCompatMode: (config) =>
      getNodeCompat(config.compatibility_date, config.compatibility_flags ?? []).mode,
  },
  // what `wrangler dev --var K:V` passes (wrangler's collectPlainTextVars)
  bindings: Object.fromEntries(
    Object.entries(args.vars).map(([name, value]) => [
      name,
      { type: "plain_text" as const, value, hidden: true },
    ]),
  ),
  dev: {
    inspector: false,
    remote: false,
    server: { hostname: "127.0.0.1", port: args.port },
    persist: args.persistDir,
    logLevel: args.logLevel,
  },
});

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void worker.dispose().finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

// startRelay polls the relay's health; this only surfaces a failed start as an exit
await worker.ready;
