import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { consumerFromUpgrade, RELAY } from "./support";

// Consumers' sockets are not permessage-deflate compressed, even when the client offers it (most
// clients do): deflating every frame for every consumer costs a Fanout about three times the
// send itself (docs/benchmarks.md, "Fanout cost per message"). wrangler.toml's
// no_web_socket_compression makes the runtime decline the offer; this checks the upgrade's answer.

const OFFER = "permessage-deflate; client_max_window_bits";

describe("consumer sockets decline permessage-deflate", () => {
  it.each([
    ["subscribeRepos", "/xrpc/com.atproto.sync.subscribeRepos"],
    ["Jetstream", "/subscribe"],
  ])("%s answers an offer with no extension", async (_name, path) => {
    const res = await SELF.fetch(`${RELAY}${path}`, {
      headers: { Upgrade: "websocket", "Sec-WebSocket-Extensions": OFFER },
    });
    expect(res.status).toBe(101);
    expect(res.headers.get("Sec-WebSocket-Extensions")).toBeNull();
    const consumer = await consumerFromUpgrade(res);
    consumer.ws.close();
  });
});
