import type {
  AbortSignalLike,
  WebSocketCloseEvent,
  WebSocketConstructor,
  WebSocketMessageEvent,
} from "./runtime";

// The live part of a replay: one subscribeRepos socket read as an async iterable of binary
// messages. The WebSocket API has no backpressure, so messages queue here until they are taken;
// a consumer that cannot keep up is told by the relay (`ConsumerTooSlow`), as any consumer is.

export class ReplayConnectionClosed extends Error {
  override readonly name = "ReplayConnectionClosed";
  constructor(
    readonly code: number,
    readonly reason: string,
    /** The last seq yielded: resume with replay({ cursor: lastSeq }). */
    readonly lastSeq: number,
  ) {
    super(
      `the relay closed the socket (${code}${reason ? ` ${reason}` : ""}) after seq ${lastSeq}`,
    );
  }
}

type Item = { frame: Uint8Array } | { error: Error } | { end: true };

function toBytes(data: unknown): Uint8Array | null {
  // (by tag too: an ArrayBuffer made in another realm fails instanceof)
  if (
    data instanceof ArrayBuffer ||
    Object.prototype.toString.call(data) === "[object ArrayBuffer]"
  )
    return new Uint8Array(data as ArrayBuffer);
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

/**
 * Binary messages of the socket at `url`; ends when `signal` aborts, throws when the socket
 * fails or the relay closes it (`lastSeq` says where the consumer is, for the error).
 */
export async function* socketMessages(
  url: string,
  WebSocketImpl: WebSocketConstructor,
  lastSeq: () => number,
  signal?: AbortSignalLike,
): AsyncGenerator<Uint8Array> {
  const queue: Item[] = [];
  let wake: (() => void) | null = null;
  const push = (item: Item) => {
    queue.push(item);
    wake?.();
    wake = null;
  };
  const socket = new WebSocketImpl(url);
  socket.binaryType = "arraybuffer";
  let closedByUs = false;
  socket.addEventListener("message", (event: WebSocketMessageEvent) => {
    const bytes = toBytes(event.data);
    if (bytes) push({ frame: bytes });
    else push({ error: new Error("the relay sent a text message; subscribeRepos is binary") });
  });
  socket.addEventListener("error", (event: unknown) => {
    const message = (event as { message?: string } | null)?.message;
    push({ error: new Error(`socket error${message ? `: ${message}` : ""} (${url})`) });
  });
  socket.addEventListener("close", (event: WebSocketCloseEvent) => {
    push(
      closedByUs
        ? { end: true }
        : { error: new ReplayConnectionClosed(event.code, event.reason, lastSeq()) },
    );
  });
  const onAbort = () => push({ end: true });
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal?.aborted) return;
    for (;;) {
      const item = queue.shift();
      if (!item) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      if ("end" in item) return;
      if ("error" in item) throw item.error;
      yield item.frame;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    closedByUs = true;
    try {
      socket.close(1000);
    } catch {
      // not open yet or already closed
    }
  }
}
