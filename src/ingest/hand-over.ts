import type { HostRecord } from "./host-record";
import type { RepoState } from "./repo-state";

// Handing a host from one HostIngester object to another (an admin pin, automatic placement, a
// change of INGEST_SHARDS). The object left keeps the state of the host's accounts; the new one
// stores the host's record, with the cursor of what the old one processed, before it connects,
// and inherits each account's state the first time it meets the account. A host that moves
// twice before all its accounts wrote again has state in more than one object, so the record
// keeps the objects it came from, most recent first, and the newest state among them wins.

/** Objects remembered per host; state only an older one holds is not inherited (no check then). */
export const MAX_PREVIOUS_INGESTERS = 4;

export type HandOver = {
  /** The object that held the host. */
  from: string;
  /** Its record there, cursor set to what it processed; null when it did not hold the host. */
  record: HostRecord | null;
};

/** The objects a host's accounts' state may be in, most recent first. */
export function previousIngesters(host: HostRecord): string[] {
  return host.previousIngesters ?? (host.previousIngester ? [host.previousIngester] : []);
}

/** The record the new object `self` keeps for a host handed over to it. */
export function adoptedRecord(record: HostRecord, from: string, self: string): HostRecord {
  const { previousIngester: _legacy, ...rest } = record;
  const chain = [from, ...previousIngesters(record)].filter(
    (name, i, all) => name !== self && all.indexOf(name) === i,
  );
  return {
    ...rest,
    previousIngesters: chain.slice(0, MAX_PREVIOUS_INGESTERS),
    connectedSinceMs: null,
  };
}

/** Of the states other objects hold for an account, the newest one of this host's (by rev). */
export function newestState(states: readonly RepoState[], hostname: string): RepoState | undefined {
  let newest: RepoState | undefined;
  for (const state of states)
    if (state.host === hostname && (!newest || state.rev > newest.rev)) newest = state;
  return newest;
}
