import { SELF } from "cloudflare:test";
import { expect, it } from "vitest";

it("answers health", async () => {
  const res = await SELF.fetch("http://relay.test/xrpc/_health");
  expect(res.status).toBe(200);
});
