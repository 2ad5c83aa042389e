// HTTP calls to a relay, and the one way their failures are told: an unreachable relay, or the
// relay's own XRPC error (`{"error","message"}`) as `<error>: <message>`.

/** A failure to show the operator as `error: <message>`, exit code 1. */
export class CliError extends Error {
  override readonly name = "CliError";
}

/** The relay answered with an XRPC error; `error` is its name (e.g. HostBanned). */
export class XrpcCallError extends CliError {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly detail: string,
  ) {
    super(detail ? `${error}: ${detail}` : error);
  }
}

/** Long enough for a requestCrawl that waits on a slow host's describeServer (5 s at the relay). */
const REQUEST_TIMEOUT_MS = 30_000;

export type RelayClient = {
  readonly url: string;
  get<T>(path: string, query?: Record<string, string | number | undefined>): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
  /** Plain text (e.g. /metrics). */
  getText(path: string): Promise<string>;
};

/** What an error response says, as the relay's XRPC error or, failing that, its HTTP status. */
export async function errorFromResponse(res: Response): Promise<XrpcCallError> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body.error === "string")
      return new XrpcCallError(
        res.status,
        body.error,
        typeof body.message === "string" ? body.message : "",
      );
  } catch {
    // not JSON: not an XRPC error, say what came back
  }
  const snippet = text.trim().slice(0, 200);
  return new XrpcCallError(
    res.status,
    `HTTP ${res.status}`,
    snippet ? `the relay answered ${JSON.stringify(snippet)}` : "",
  );
}

export function relayClient(url: string, token?: string): RelayClient {
  const call = async (path: string, init: RequestInit): Promise<Response> => {
    const headers = new Headers(init.headers);
    if (token) headers.set("Authorization", `Bearer ${token}`);
    let res: Response;
    try {
      res = await fetch(`${url}${path}`, {
        ...init,
        headers,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why =
        err instanceof Error && err.name === "TimeoutError"
          ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`
          : (cause?.code ?? cause?.message ?? String(err));
      throw new CliError(`cannot reach the relay at ${url} (${why})`);
    }
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  };
  const parseJson = async <T>(res: Response, path: string): Promise<T> => {
    try {
      return (await res.json()) as T;
    } catch {
      throw new CliError(`${url}${path} did not answer JSON; is this a freehose relay?`);
    }
  };
  return {
    url,
    async get<T>(path: string, query: Record<string, string | number | undefined> = {}) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
      const search = params.toString();
      const full = search ? `${path}?${search}` : path;
      return parseJson<T>(await call(full, { headers: { Accept: "application/json" } }), path);
    },
    async post<T>(path: string, body: unknown) {
      const res = await call(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
      return parseJson<T>(res, path);
    },
    async getText(path: string) {
      return (await call(path, {})).text();
    },
  };
}

/**
 * Every item of a cursor-paged listing (listHosts, /admin/hosts): asks for the next page while
 * the relay gives a cursor, and stops if a cursor repeats (a relay bug would otherwise loop).
 */
export async function* pages<T>(
  fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; cursor?: string }>,
  startCursor?: string,
): AsyncGenerator<{ items: T[]; cursor: string | undefined; next: string | undefined }> {
  let cursor = startCursor;
  const seen = new Set<string>();
  for (;;) {
    const page = await fetchPage(cursor);
    yield { items: page.items, cursor, next: page.cursor };
    if (!page.cursor || seen.has(page.cursor)) return;
    seen.add(page.cursor);
    cursor = page.cursor;
  }
}
