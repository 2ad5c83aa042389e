import { Lexicons } from "@atproto/lexicon";
import defs from "../lexicons/com.atproto.sync.defs.json";
import getHostStatus from "../lexicons/com.atproto.sync.getHostStatus.json";
import getLatestCommit from "../lexicons/com.atproto.sync.getLatestCommit.json";
import getRepoStatus from "../lexicons/com.atproto.sync.getRepoStatus.json";
import listHosts from "../lexicons/com.atproto.sync.listHosts.json";
import listRepos from "../lexicons/com.atproto.sync.listRepos.json";
import requestCrawl from "../lexicons/com.atproto.sync.requestCrawl.json";
import subscribeRepos from "../lexicons/com.atproto.sync.subscribeRepos.json";
import { ProtocolError } from "./errors";
import type { Frame } from "./frame";

// The official com.atproto.sync lexicon documents we serve (src/lexicons, copied unchanged from
// the atproto repository) are the contract for our outputs and for the messages we relay.

const DOCUMENTS = [
  defs,
  getHostStatus,
  getLatestCommit,
  getRepoStatus,
  listHosts,
  listRepos,
  requestCrawl,
  subscribeRepos,
];

let lexicons: Lexicons | null = null;

function load(): Lexicons {
  if (!lexicons)
    lexicons = new Lexicons(DOCUMENTS as unknown as ConstructorParameters<typeof Lexicons>[0]);
  return lexicons;
}

const MESSAGE_DEFS: Record<Exclude<Frame["kind"], "error">, string> = {
  commit: "com.atproto.sync.subscribeRepos#commit",
  sync: "com.atproto.sync.subscribeRepos#sync",
  identity: "com.atproto.sync.subscribeRepos#identity",
  account: "com.atproto.sync.subscribeRepos#account",
  info: "com.atproto.sync.subscribeRepos#info",
};

/** Validates a decoded subscribeRepos message body against its lexicon definition. */
export function validateSubscribeReposMessage(frame: Frame): void {
  if (frame.kind === "error") return;
  const result = load().validate(MESSAGE_DEFS[frame.kind], frame.body);
  if (!result.success) throw new ProtocolError("LexiconViolation", result.error.message);
}

/** Validates the JSON output of one of our query endpoints against its lexicon. */
export function validateXrpcOutput(nsid: string, value: unknown): void {
  try {
    load().assertValidXrpcOutput(nsid, value);
  } catch (err) {
    throw new ProtocolError("LexiconViolation", err instanceof Error ? err.message : String(err));
  }
}
