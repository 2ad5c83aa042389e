import { hostDirectoryStub } from "../stubs";
import { json } from "./errors";
import { intParam, positionCursorParam, requireMethod, type XrpcHandler } from "./params";
import { hostView } from "./views";

// com.atproto.sync.listHosts: every host the relay knows, in the order the lexicon recommends
// (first seen, oldest first), paged by an opaque cursor. Why a host is not syncing (last error,
// counters) is on the admin host list, which the lexicon has no room for.

const DEFAULT_LIMIT = 200;
const MAX_LIMIT = 1000;

export const handleListHosts: XrpcHandler = async (request, env) => {
  requireMethod(request, "GET");
  const url = new URL(request.url);
  const limit = intParam(url, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT);
  const page = await hostDirectoryStub(env).listHosts(positionCursorParam(url), limit);
  const body: { hosts: ReturnType<typeof hostView>[]; cursor?: string } = {
    hosts: page.hosts.map(hostView),
  };
  if (page.cursor !== null) body.cursor = String(page.cursor);
  return json(body);
};
