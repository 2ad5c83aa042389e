// Which limits a host is crawled with. An admin's explicit limits (/admin/hosts/limits) win;
// otherwise a host under a trusted suffix (TRUSTED_HOST_SUFFIXES, e.g. `.host.bsky.network`,
// whose hosts carry hundreds of thousands of accounts each) gets the trusted limits, as the
// reference relay's trusted domains do (indigo cmd/relay `IsTrustedHostname`), and every other
// host the limits for new hosts.

export type HostLimits = { eventsPerSecond: number; maxAccounts: number };

export type HostLimitsPolicy = {
  newHost: HostLimits;
  trusted: HostLimits;
  /** Lowercase suffixes; a leading dot matches subdomains only, none also the name itself. */
  trustedSuffixes: readonly string[];
};

/**
 * True when `hostname` (the relay's normalised form: lowercase, no trailing dot; a loopback
 * port, DEV_MODE only, is ignored) ends with one of `suffixes` on a label boundary:
 * `.example.com` matches `pds.example.com`, not `example.com` nor `badexample.com`;
 * `example.com` matches `example.com` and `pds.example.com`, not `badexample.com`.
 */
export function isTrustedHostname(hostname: string, suffixes: readonly string[]): boolean {
  const name = hostname.toLowerCase().replace(/:[0-9]+$/, "");
  return suffixes.some((raw) => {
    const suffix = raw.toLowerCase();
    if (suffix.startsWith(".")) return name.endsWith(suffix) && name.length > suffix.length;
    return name === suffix || name.endsWith(`.${suffix}`);
  });
}

export function hostLimitsFor(
  hostname: string,
  adminLimits: HostLimits | null,
  policy: HostLimitsPolicy,
): HostLimits {
  if (adminLimits) return adminLimits;
  return isTrustedHostname(hostname, policy.trustedSuffixes) ? policy.trusted : policy.newHost;
}
