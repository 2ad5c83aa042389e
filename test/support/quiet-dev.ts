import { CoreOptionsSchema, getNodeCompat } from "miniflare";
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

/**
 * miniflare sends every outbound fetch of the Worker through a Worker of its own, which only
 * swaps two headers (its `stripCfConnectingIp` option, on by default; wrangler has no switch for
 * it). Each DID look-up then runs that Worker's fetch handler too, and each upstream WebSocket's
 * messages cross a pipe between the two Workers: ~13-20 µs of the relay thread per event in a
 * backlog drain (docs/benchmarks.md, "miniflare's outbound Worker"). Production has no such
 * Worker. The option's default lives in miniflare's exported options schema (zod), which is
 * where this turns it off; if that schema changes shape, the launch fails rather than measure
 * something else.
 */
function sendOutboundStraight(): void {
  type Schema = {
    _def?: Record<string, unknown> & { defaultValue?: () => unknown };
    shape?: Record<string, Schema>;
  };
  const find = (schema: Schema | undefined, depth: number): Schema | null => {
    if (!schema?._def || depth > 6) return null;
    const field = schema.shape?.stripCfConnectingIp;
    if (field) return field;
    for (const key of ["schema", "left", "right", "innerType"]) {
      const found = find(schema._def[key] as Schema | undefined, depth + 1);
      if (found) return found;
    }
    return null;
  };
  const field = find(CoreOptionsSchema as unknown as Schema, 0);
  if (!field?._def || typeof field._def.defaultValue !== "function")
    throw new Error(
      "quiet-dev: miniflare's stripCfConnectingIp option was not found (outboundWorker: true keeps it)",
    );
  field._def.defaultValue = () => false;
}

if (!args.outboundWorker) sendOutboundStraight();

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
