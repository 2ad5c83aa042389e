import { hostBaseUrl } from "./hostname";

// Opens the outbound subscribeRepos socket to a PDS. workerd opens client WebSockets with
// fetch() and an Upgrade header; binaryType must be set before accept(), or binary frames
// arrive as Blobs whose async reads can overtake each other (DESIGN.md, seen with wrangler 4.86).

export class UpstreamRefused extends Error {
  override readonly name = "UpstreamRefused";
}

export const RELAY_SERVER_MARKER = "atproto-relay";

export function subscribeUrl(hostname: string, cursor: number | null): string {
  const base = `${hostBaseUrl(hostname, "http")}/xrpc/com.atproto.sync.subscribeRepos`;
  return cursor === null ? base : `${base}?cursor=${cursor}`;
}

export async function openUpstream(hostname: string, cursor: number | null): Promise<WebSocket> {
  const res = await fetch(subscribeUrl(hostname, cursor), {
    headers: { Upgrade: "websocket", "User-Agent": "freehose (atproto relay)" },
    // a redirect would take the socket to an address or port the hostname policy never saw
    // (hostname.ts): the socket goes to the checked host or nowhere
    redirect: "manual",
  });
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    throw new UpstreamRefused(
      `${hostname} answered subscribeRepos with a redirect (HTTP ${res.status}); redirects are not followed`,
    );
  }
  // loop guard: never subscribe to another relay (or to ourselves)
  if (res.headers.get("Server")?.toLowerCase().includes(RELAY_SERVER_MARKER)) {
    res.webSocket?.close(1000, "relay loop");
    throw new UpstreamRefused(
      `${hostname} is a relay (Server: ${res.headers.get("Server")}); not subscribing`,
    );
  }
  const ws = res.webSocket;
  if (res.status !== 101 || !ws) {
    await res.body?.cancel();
    throw new UpstreamRefused(`${hostname} did not upgrade subscribeRepos (HTTP ${res.status})`);
  }
  ws.binaryType = "arraybuffer";
  ws.accept();
  return ws;
}
