import type { Env } from "../env";
import { checkHostname } from "../ingest/hostname";
import type { CrawlAnswer } from "../status/summary";
import { hostDirectoryStub } from "../stubs";
import { XrpcError } from "./errors";
import type { XrpcHandler } from "./params";

// requestCrawl's answer, kept for the host's status page ("why does my host do nothing after
// requestCrawl?"): one more HostDirectory request and one row written per requestCrawl call with
// a valid hostname (ingest/crawl-answer-log.ts, at most 1,000 names). Names that fail the
// hostname policy are not kept: they are not hosts.

async function crawledHostname(request: Request, devMode: boolean): Promise<string | null> {
  try {
    const input = (await request.json()) as { hostname?: unknown } | null;
    if (typeof input?.hostname !== "string") return null;
    const checked = checkHostname(input.hostname, devMode);
    return checked.ok ? checked.hostname : null;
  } catch {
    return null;
  }
}

async function remember(
  env: Env,
  copy: Request,
  devMode: boolean,
  answer: Omit<CrawlAnswer, "atMs">,
): Promise<void> {
  const hostname = await crawledHostname(copy, devMode);
  if (!hostname) return;
  try {
    await hostDirectoryStub(env).noteCrawlAnswer(hostname, { atMs: Date.now(), ...answer });
  } catch (err) {
    // the caller's answer matters more than the page's copy of it
    console.error(JSON.stringify({ msg: "crawl answer not kept", hostname, error: String(err) }));
  }
}

/** Wraps the requestCrawl handler so its answer is remembered for `/hosts/<hostname>`. */
export function rememberingCrawlAnswers(handler: XrpcHandler): XrpcHandler {
  return async (request, env, config) => {
    if (request.method !== "POST") return handler(request, env, config);
    const copy = request.clone();
    try {
      const response = await handler(request, env, config);
      await remember(env, copy, config.devMode, { status: response.status });
      return response;
    } catch (err) {
      await remember(
        env,
        copy,
        config.devMode,
        err instanceof XrpcError
          ? { status: err.status, error: err.error, message: err.message }
          : { status: 500, error: "InternalServerError" },
      );
      throw err;
    }
  };
}
