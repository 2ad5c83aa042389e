// Command-line arguments, parsed against what a command accepts: `--name value`, `--name=value`,
// boolean switches, and positionals. Pure, so every command's parsing is tested without a relay.

export type FlagSpec = Record<string, "string" | "boolean">;

export type ParsedArgs = {
  positionals: string[];
  flags: Record<string, string | true>;
};

/** A mistake in how the CLI was called: printed with the command's help, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Flags every command takes. */
export const COMMON_FLAGS: FlagSpec = {
  url: "string",
  token: "string",
  help: "boolean",
  json: "boolean",
};

export function parseArgs(argv: readonly string[], spec: FlagSpec): ParsedArgs {
  const positionals: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      flags.help = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown option --${name}`);
    if (kind === "boolean") {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || value.startsWith("--"))
        throw new UsageError(`--${name} needs a value`);
      i++;
    }
    flags[name] = value;
  }
  return { positionals, flags };
}

export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const value = args.flags[name];
  return typeof value === "string" ? value : undefined;
}

export function booleanFlag(args: ParsedArgs, name: string): boolean {
  return args.flags[name] === true;
}

/** A whole number flag within [min, max]; `fallback` when absent, UsageError when malformed. */
export function integerFlag(
  args: ParsedArgs,
  name: string,
  min: number,
  fallback?: number,
): number | undefined {
  const raw = stringFlag(args, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min)
    throw new UsageError(`--${name} must be a whole number >= ${min}, got ${JSON.stringify(raw)}`);
  return value;
}

/** A positive number flag (fractions allowed, e.g. a rate of 0.5/s). */
export function positiveNumberFlag(args: ParsedArgs, name: string, fallback: number): number {
  const raw = stringFlag(args, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new UsageError(`--${name} must be a number > 0, got ${JSON.stringify(raw)}`);
  return value;
}

/** Exactly `names.length` positionals, named in the error when one is missing or extra. */
export function expectPositionals(args: ParsedArgs, names: readonly string[]): string[] {
  if (args.positionals.length < names.length)
    throw new UsageError(`missing <${names[args.positionals.length]}>`);
  if (args.positionals.length > names.length)
    throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[names.length])}`);
  return args.positionals;
}

export type Connection = { url: string; token: string | undefined };

/**
 * The relay to talk to: `--url` or FREEHOSE_URL, and the admin token: `--token` or
 * FREEHOSE_ADMIN_TOKEN. The flag wins over the environment.
 */
export function connectionFrom(
  args: ParsedArgs,
  env: Record<string, string | undefined>,
): Connection {
  const url = stringFlag(args, "url") ?? env.FREEHOSE_URL;
  if (!url)
    throw new UsageError("no relay URL: pass --url https://relay.example or set FREEHOSE_URL");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`the relay URL ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new UsageError(`the relay URL must be http(s), got ${JSON.stringify(url)}`);
  const token = stringFlag(args, "token") ?? env.FREEHOSE_ADMIN_TOKEN;
  return { url: parsed.origin, token: token || undefined };
}

export function requireToken(connection: Connection): string {
  if (!connection.token)
    throw new UsageError("no admin token: pass --token TOKEN or set FREEHOSE_ADMIN_TOKEN");
  return connection.token;
}
