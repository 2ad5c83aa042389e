import { readFileSync } from "node:fs";
import {
  booleanFlag,
  COMMON_FLAGS,
  connectionFrom,
  expectPositionals,
  type FlagSpec,
  integerFlag,
  type ParsedArgs,
  parseArgs,
  positiveNumberFlag,
  requireToken,
  stringFlag,
  UsageError,
} from "./args";
import { hostsTable, listAdminHosts, statusCounts } from "./hosts";
import { importHosts } from "./import-hosts";
import { formatSummary, type HostOutcome, type ImportSummary, parseHostList } from "./import-plan";
import { CliError, relayClient } from "./relay-client";
import { fetchStatus, formatStatus } from "./status";

// `npx freehose <command>`: the admin API (src/xrpc/admin.ts) and the relay's public endpoints
// from a terminal. Each command is a few lines over the modules beside this one.

type Io = {
  argv: readonly string[];
  env: Record<string, string | undefined>;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Whether stderr is a terminal (a progress line that rewrites itself), or plain lines. */
  isTty: boolean;
};

type Command = {
  usage: string;
  summary: string;
  help: string;
  flags?: FlagSpec;
  run: (args: ParsedArgs, io: Io) => Promise<void>;
};

const CONNECTION_HELP = `Relay and token:
  --url URL       the relay (or FREEHOSE_URL)
  --token TOKEN   its admin token, the ADMIN_TOKEN secret (or FREEHOSE_ADMIN_TOKEN)`;

function adminClient(args: ParsedArgs, io: Io) {
  const connection = connectionFrom(args, io.env);
  return relayClient(connection.url, requireToken(connection));
}

function printResult(args: ParsedArgs, io: Io, result: unknown, line: string): void {
  io.out(booleanFlag(args, "json") ? JSON.stringify(result, null, 2) : line);
}

/** One POST to an admin endpoint that takes `{hostname}`. */
function hostAction(
  name: string,
  path: string,
  summary: string,
  done: (hostname: string, result: Record<string, unknown>) => string,
): Command {
  return {
    usage: `hosts ${name} <hostname>`,
    summary,
    help: `${summary}\n\n${CONNECTION_HELP}\n  --json          print the relay's answer as JSON`,
    async run(args, io) {
      const [hostname] = expectPositionals(args, ["hostname"]) as [string];
      const result = await adminClient(args, io).post<Record<string, unknown>>(path, { hostname });
      printResult(args, io, result, done(hostname, result));
    },
  };
}

function repoAction(name: string, path: string, summary: string): Command {
  return {
    usage: `repos ${name} <did>`,
    summary,
    help: `${summary}\n\n${CONNECTION_HELP}\n  --json          print the relay's answer as JSON`,
    async run(args, io) {
      const [did] = expectPositionals(args, ["did"]) as [string];
      const result = await adminClient(args, io).post<{
        active: boolean;
        status?: string;
        seq: number | null;
      }>(path, { did });
      const state = result.active ? "active" : `inactive (${result.status ?? "no status"})`;
      const seq =
        result.seq === null ? "no #account event (unchanged)" : `#account seq ${result.seq}`;
      printResult(args, io, result, `${did}: ${state}, ${seq}`);
    },
  };
}

const DEFAULT_IMPORT_RATE = 5;
const DEFAULT_IMPORT_CONCURRENCY = 4;

function progressLine(summary: ImportSummary, seen: number, hostname: string): string {
  const skipped = Object.values(summary.skippedByStatus).reduce((a, b) => a + b, 0);
  const finished = summary.added + summary.known + summary.refused + summary.doneEarlier + skipped;
  return `${finished}/${seen} hosts: ${summary.added} added, ${summary.known} known, ${summary.refused} refused  ${hostname}`;
}

const COMMANDS: Record<string, Command> = {
  "hosts list": {
    usage: "hosts list [--json]",
    summary: "every host the relay knows: status, accounts, events, lag, last error",
    help: `Every host the relay knows (GET /admin/hosts, all pages): status, accounts, events
accepted and dropped, lag (time since its last event) and last error.

${CONNECTION_HELP}
  --json          a JSON array of the hosts, every field the relay gives`,
    async run(args, io) {
      const hosts = await listAdminHosts(adminClient(args, io));
      if (booleanFlag(args, "json")) {
        io.out(JSON.stringify(hosts, null, 2));
        return;
      }
      io.out(hostsTable(hosts));
      if (hosts.length)
        io.out(`\n${hosts.length} hosts: ${statusCounts(hosts.map((h) => h.status))}`);
    },
  },
  "hosts ban": hostAction(
    "ban",
    "/admin/hosts/ban",
    "disconnect a host at once and refuse its requestCrawl until unbanned",
    (h) => `${h}: banned`,
  ),
  "hosts unban": hostAction(
    "unban",
    "/admin/hosts/unban",
    "lift a host's ban and resume ingesting it",
    (h, r) => `${h}: unbanned, now ${String(r.status)}`,
  ),
  "hosts reset-cursor": hostAction(
    "reset-cursor",
    "/admin/hosts/reset-cursor",
    "forget a host's cursor (after its PDS reset its seq) and resume it live",
    (h) => `${h}: cursor reset, resuming live`,
  ),
  "hosts pin": {
    usage: "hosts pin <hostname> [--unpin]",
    summary: "give a busy host an ingester object of its own (or back to its shard)",
    flags: { unpin: "boolean" },
    help: `Gives a host an ingester Durable Object of its own, handing it over with its cursor;
--unpin moves it back to its shard.

  --unpin         move it back to its shard
${CONNECTION_HELP}
  --json          print the relay's answer as JSON`,
    async run(args, io) {
      const [hostname] = expectPositionals(args, ["hostname"]) as [string];
      const pinned = !booleanFlag(args, "unpin");
      const result = await adminClient(args, io).post("/admin/hosts/pin", { hostname, pinned });
      printResult(args, io, result, `${hostname}: ${pinned ? "pinned" : "unpinned"}`);
    },
  },
  "hosts limits": {
    usage: "hosts limits <hostname> --events-per-second N --max-accounts N",
    summary: "set a host's own limits (events/s and accounts) instead of the defaults",
    flags: { "events-per-second": "string", "max-accounts": "string" },
    help: `Sets a host's own limits; new hosts start with the relay's defaults (see README,
Configuration). Both limits are required.

  --events-per-second N   events accepted per second from the host (>= 1)
  --max-accounts N        accounts the relay follows on the host (>= 0)
${CONNECTION_HELP}
  --json          print the relay's answer as JSON`,
    async run(args, io) {
      const [hostname] = expectPositionals(args, ["hostname"]) as [string];
      const eventsPerSecond = integerFlag(args, "events-per-second", 1);
      const maxAccounts = integerFlag(args, "max-accounts", 0);
      if (eventsPerSecond === undefined) throw new UsageError("missing --events-per-second N");
      if (maxAccounts === undefined) throw new UsageError("missing --max-accounts N");
      const result = await adminClient(args, io).post("/admin/hosts/limits", {
        hostname,
        eventsPerSecond,
        maxAccounts,
      });
      printResult(
        args,
        io,
        result,
        `${hostname}: ${eventsPerSecond} events/s, ${maxAccounts} accounts`,
      );
    },
  },
  "hosts import": {
    usage: "hosts import (--from https://relay.example | --file hosts.txt) [--state file.json]",
    summary: "ask the relay to crawl every host another relay lists, or a list of hostnames",
    flags: {
      from: "string",
      file: "string",
      state: "string",
      rate: "string",
      concurrency: "string",
      all: "boolean",
    },
    help: `Reads hosts from another relay's com.atproto.sync.listHosts (every page), or from a file
with one hostname a line (# starts a comment), and asks this relay to crawl each one it does
not list yet (com.atproto.sync.requestCrawl with the admin token). Prints a summary: added,
already known, refused by reason. A rate limit or the daily cap on new hosts stops the import;
rerun with the same --state to go on.

  --from URL        the relay to import hosts from
  --file PATH       a list of hostnames instead
  --all             also ask for hosts the source lists as banned or offline (skipped otherwise)
  --state PATH      remember finished hosts and the listing cursor here; a rerun skips them
  --rate N          requestCrawl calls started per second (default ${DEFAULT_IMPORT_RATE})
  --concurrency N   calls in flight at once (default ${DEFAULT_IMPORT_CONCURRENCY})
${CONNECTION_HELP}
  --json            print the summary as JSON`,
    async run(args, io) {
      const from = stringFlag(args, "from");
      const file = stringFlag(args, "file");
      expectPositionals(args, []);
      if ((from === undefined) === (file === undefined))
        throw new UsageError("give exactly one of --from URL or --file PATH");
      const relay = adminClient(args, io);
      let source: Parameters<typeof importHosts>[0]["source"];
      if (from !== undefined) {
        const origin = connectionFrom({ positionals: [], flags: { url: from } }, {}).url;
        source = { kind: "relay", client: relayClient(origin) };
      } else {
        let text: string;
        try {
          text = readFileSync(file as string, "utf8");
        } catch (err) {
          throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
        }
        source = { kind: "file", path: file as string, hostnames: parseHostList(text) };
      }
      let seen = 0;
      const onHost = (hostname: string, outcome: HostOutcome, summary: ImportSummary) => {
        if (io.isTty) io.err(`\r\x1b[2K${progressLine(summary, seen, hostname)}`);
        else io.err(`${outcome.replace(":", " ")} ${hostname}\n`);
      };
      const summary = await importHosts({
        relay,
        source,
        statePath: stringFlag(args, "state"),
        requestsPerSecond: positiveNumberFlag(args, "rate", DEFAULT_IMPORT_RATE),
        concurrency: integerFlag(args, "concurrency", 1, DEFAULT_IMPORT_CONCURRENCY) as number,
        includeAllStatuses: booleanFlag(args, "all"),
        onHost,
        onPage: (n) => {
          seen += n;
        },
      });
      if (io.isTty) io.err("\r\x1b[2K");
      printResult(args, io, summary, formatSummary(summary));
      if (summary.stopped)
        throw new CliError(
          `the import stopped: ${summary.stopped}; rerun with the same --state to go on`,
        );
    },
  },
  "repos takedown": repoAction(
    "takedown",
    "/admin/repos/takedown",
    "stop relaying an account and tell consumers (#account, status takendown)",
  ),
  "repos restore": repoAction(
    "restore",
    "/admin/repos/restore",
    "undo a takedown and tell consumers the account's own status",
  ),
  status: {
    usage: "status [--json]",
    summary: "head seq, replay window, hosts by status, events, consumers (no token needed)",
    help: `The relay at a glance from its public endpoints (/xrpc/_health and /metrics): head seq,
oldest seq served for replay, whether the log is writable, hosts by status, events accepted and
dropped by reason, consumers connected (when the relay reports them).

  --url URL       the relay (or FREEHOSE_URL)
  --json          print it as JSON`,
    async run(args, io) {
      const connection = connectionFrom(args, io.env);
      const status = await fetchStatus(relayClient(connection.url));
      printResult(args, io, status, formatStatus(status));
    },
  },
};

function overview(): string {
  const width = Math.max(
    ...Object.values(COMMANDS).map((c) => c.usage.split(" ").slice(0, 2).join(" ").length),
  );
  const lines = Object.entries(COMMANDS).map(
    ([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`,
  );
  return `freehose: admin CLI for a freehose relay

Usage: npx freehose <command> [options]

Commands:
${lines.join("\n")}

${CONNECTION_HELP}

Run \`npx freehose <command> --help\` for a command's options.`;
}

function commandHelp(command: Command): string {
  return `Usage: npx freehose ${command.usage}\n\n${command.help}`;
}

/** Runs the CLI; returns the exit code (0 ok, 1 failed, 2 wrong usage). */
export async function main(io: Io): Promise<number> {
  const [first, second] = io.argv;
  const name = [`${first} ${second}`, first ?? ""].find((n) => COMMANDS[n]);
  if (!name) {
    const asked = first === undefined || first === "--help" || first === "-h";
    if (asked || first === "hosts" || first === "repos") {
      io.out(overview());
      return asked ? 0 : 2;
    }
    io.err(`error: unknown command ${JSON.stringify(first)}\n\n${overview()}\n`);
    return 2;
  }
  const command = COMMANDS[name] as Command;
  const rest = io.argv.slice(name.split(" ").length);
  try {
    const args = parseArgs(rest, { ...COMMON_FLAGS, ...command.flags });
    if (booleanFlag(args, "help")) {
      io.out(commandHelp(command));
      return 0;
    }
    await command.run(args, io);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}\n\nUsage: npx freehose ${command.usage}\n`);
      return 2;
    }
    if (err instanceof CliError) {
      io.err(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** The process's CLI: bin/freehose.mjs calls this. */
export async function runCli(): Promise<number> {
  return main({
    argv: process.argv.slice(2),
    env: process.env,
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(text),
    isTty: process.stderr.isTTY === true,
  });
}
