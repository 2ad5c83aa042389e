import type { Env } from "../env";
import type { CrawlAnswer } from "../status/summary";
import { hostDirectoryStub } from "../stubs";
import { XrpcError } from "./errors";

// requestCrawl's answer, kept for the host's status page ("why does my host do nothing after
// requestCrawl?"): one row written per requestCrawl call with a valid hostname
// (ingest/crawl-answer-log.ts, at most 1,000 names). An accepted crawl's answer rides on the
// call that reports the host's new status (ingesters.ts startIngesting); a refusal's is one more
// HostDirectory request. Names that fail the hostname policy are not kept: they are not hosts.

/** The answer an accepted requestCrawl gives (an empty JSON object). */
export const CRAWL_ACCEPTED: Omit<CrawlAnswer, "atMs"> = { status: 200 };

/** What a refused or failed requestCrawl answered, as the host's page shows it. */
export function refusalAnswer(err: unknown): Omit<CrawlAnswer, "atMs"> {
  return err instanceof XrpcError
    ? { status: err.status, error: err.error, message: err.message }
    : { status: 500, error: "InternalServerError" };
}

/** Keeps a refusal's answer for `/hosts/<hostname>`; never fails the caller's answer. */
export async function rememberRefusal(env: Env, hostname: string, err: unknown): Promise<void> {
  try {
    await hostDirectoryStub(env).noteCrawlAnswer(hostname, {
      atMs: Date.now(),
      ...refusalAnswer(err),
    });
  } catch (error) {
    // the caller's answer matters more than the page's copy of it
    console.error(JSON.stringify({ msg: "crawl answer not kept", hostname, error: String(error) }));
  }
}
