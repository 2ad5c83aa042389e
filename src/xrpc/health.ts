import type { Env } from "../env";
import { sequencerStub } from "../stubs";
import { json, xrpcError } from "./errors";

/**
 * `/xrpc/_health`: 200 with the current seq and when its event was sequenced (the relay's clock,
 * µs) when the log is writable, 503 otherwise.
 */
export async function handleHealth(env: Env): Promise<Response> {
  try {
    const state = await sequencerStub(env).getLogState();
    return json({
      version: "freehose",
      seq: state.headSeq,
      headTimeUs: state.headTimeUs,
      oldestSeq: state.oldestSeq,
      writable: state.writable,
      segments: state.segments,
      hotBytes: state.hotBytes,
    });
  } catch (err) {
    return xrpcError(503, "Unavailable", `the event log is not reachable: ${String(err)}`);
  }
}
