/**
 * Largest message sent on an append socket (a batch, or a delivery to relay). Cloudflare documents 1 MiB as the size limit of a
 * WebSocket message a Durable Object receives (its limits page); the rare batch over it (an
 * ingester batch is cut at ~1 MB of frames, plus the frame that crossed the line) is a plain RPC
 * call, and so is a bigger delivery.
 */
export const MAX_APPEND_MESSAGE_BYTES = 1024 * 1024;
