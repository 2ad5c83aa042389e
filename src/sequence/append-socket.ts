import type { AppendBatch } from "./append-codec";
import { decodeFrame, encodeError, encodeResult } from "./append-codec";
import type { AppendResult } from "./hot-log";

// The Sequencer's end of an append socket (append-client.ts has the ingester's end). Accepted
// with the hibernation API (`ctx.acceptWebSocket`), so an open socket does not keep the
// Sequencer from hibernating, and each batch is one incoming WebSocket message, billed 1/20 of
// a request, instead of an RPC call (one request) or an RPC session (which keeps the Sequencer
// awake: docs/cost.md). Each message is a batch, answered by one message once the batch is
// durable: the output gate holds every outgoing message of the object until its writes are, as
// it holds RPC answers.

/** The tag of append sockets among the Sequencer's hibernatable sockets. */
export const APPEND_SOCKET_TAG = "append";
/** The Sequencer's path for opening an append socket (any other is 404). */
export const APPEND_SOCKET_PATH = "/append-socket";

/** What the Sequencer keeps per append socket (survives hibernation). */
type AppendSocketAttachment = { appender: string };

/** Accepts an append socket; `appender` tells one appender's batches from another's. */
export function acceptAppendSocket(ctx: DurableObjectState, request: Request): Response {
  if (new URL(request.url).pathname !== APPEND_SOCKET_PATH)
    return new Response("not found", { status: 404 });
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket")
    return new Response("expected a WebSocket upgrade", { status: 426 });
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  ctx.acceptWebSocket(server, [APPEND_SOCKET_TAG]);
  server.serializeAttachment({ appender: crypto.randomUUID() } satisfies AppendSocketAttachment);
  return new Response(null, { status: 101, webSocket: client });
}

export function isAppendSocket(ctx: DurableObjectState, ws: WebSocket): boolean {
  return ctx.getTags(ws).includes(APPEND_SOCKET_TAG);
}

/**
 * Answers one message of an append socket: appends its batch (`append`, with the socket's
 * appender) and sends the result, or an error frame if the append failed or the message is
 * not a batch. A socket the ingester has closed meanwhile gets nothing: it sends the batch again
 * on another (appends are idempotent per host cursor, append-client.ts).
 */
export async function answerAppendMessage(
  ws: WebSocket,
  message: string | ArrayBuffer,
  append: (batch: AppendBatch, appender: string) => Promise<AppendResult>,
): Promise<void> {
  let reply: Uint8Array;
  let id = 0;
  try {
    if (typeof message === "string") throw new RangeError("append frames are binary");
    const frame = decodeFrame(new Uint8Array(message));
    id = frame.id;
    if (frame.kind !== "batch") throw new RangeError(`unexpected ${frame.kind} frame`);
    const appender = (ws.deserializeAttachment() as AppendSocketAttachment | null)?.appender;
    reply = encodeResult(id, await append(frame.batch, appender ?? "unknown"));
  } catch (err) {
    reply = encodeError(id, String(err));
  }
  try {
    ws.send(reply);
  } catch {
    // closed meanwhile: the ingester sends it again
  }
}
