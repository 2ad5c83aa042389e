// The one seam between the client and its platform. The client runs in Node (20+) and browsers,
// and must not depend on Workers or DOM type definitions, so what it needs from `fetch`,
// `WebSocket` and `AbortSignal` is described here structurally; the platform's own objects (or
// the `ws` package's WebSocket) fit these shapes.

export type AbortSignalLike = {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
};

export type FetchInit = { signal?: AbortSignalLike; headers?: Record<string, string> };

export type FetchResponse = {
  readonly ok: boolean;
  readonly status: number;
  json(): Promise<unknown>;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
};

// Method syntax makes the parameters bivariant, so the platform's `fetch` (which takes wider
// argument types than these) is accepted as it is.
type Bivariant<F extends (...args: never[]) => unknown> = {
  method(...args: Parameters<F>): ReturnType<F>;
}["method"];

export type FetchFunction = Bivariant<(url: string, init?: FetchInit) => Promise<FetchResponse>>;

export type WebSocketMessageEvent = { data: unknown };
export type WebSocketCloseEvent = { code: number; reason: string };

export interface WebSocketLike {
  binaryType: string;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: Bivariant<(event: unknown) => void>): void;
  addEventListener(
    type: "message",
    listener: Bivariant<(event: WebSocketMessageEvent) => void>,
  ): void;
  addEventListener(type: "close", listener: Bivariant<(event: WebSocketCloseEvent) => void>): void;
  addEventListener(type: "error", listener: Bivariant<(event: unknown) => void>): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

type Globals = { fetch?: FetchFunction; WebSocket?: WebSocketConstructor };

export function defaultFetch(): FetchFunction {
  const f = (globalThis as Globals).fetch;
  if (!f) throw new Error("no global fetch: pass the `fetch` option");
  return f.bind(globalThis);
}

export function defaultWebSocket(): WebSocketConstructor {
  const ws = (globalThis as Globals).WebSocket;
  if (!ws)
    throw new Error(
      "no global WebSocket (Node 20 has none): pass the `WebSocket` option, e.g. the `ws` package's",
    );
  return ws;
}

/** The relay's HTTP base (no trailing slash) from a service given as http(s):// or ws(s)://. */
export function httpBase(service: string): string {
  return service.replace(/^ws(s?):\/\//i, "http$1://").replace(/\/+$/, "");
}

/** The relay's WebSocket base from a service given as http(s):// or ws(s)://. */
export function wsBase(service: string): string {
  return service.replace(/^http(s?):\/\//i, "ws$1://").replace(/\/+$/, "");
}

/** A plan's `url`, absolute or relative to the relay (root-relative or relative to the service). */
export function resolveUrl(base: string, url: string): string {
  if (/^https?:\/\//i.test(url)) return url;
  if (url.startsWith("/")) {
    const origin = /^https?:\/\/[^/]+/i.exec(base)?.[0] ?? base;
    return `${origin}${url}`;
  }
  return `${base}/${url}`;
}

type TimerGlobals = {
  setTimeout(callback: () => void, ms: number): unknown;
  AbortController: new () => { signal: AbortSignalLike; abort(reason?: unknown): void };
};

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => (globalThis as unknown as TimerGlobals).setTimeout(resolve, ms));
}

export function newAbortController(): { signal: AbortSignalLike; abort(reason?: unknown): void } {
  return new (globalThis as unknown as TimerGlobals).AbortController();
}
