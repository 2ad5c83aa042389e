// The relay's own takedowns (admin), kept by the Sequencer because it is the one place every
// event passes through: a DID taken down here is refused whatever host or ingester its events
// come from, whichever event kind they are, and however long validation took upstream of it.
// Loaded into a Set when the object starts, so the check on the append path is one lookup per
// event; written only by admin actions.

export function loadTakedowns(sql: SqlStorage): Set<string> {
  const dids = new Set<string>();
  for (const row of sql.exec<{ did: string }>("SELECT did FROM takedowns")) dids.add(row.did);
  return dids;
}

export function writeTakedown(sql: SqlStorage, did: string, takendown: boolean, nowMs: number) {
  if (takendown)
    sql.exec("INSERT OR IGNORE INTO takedowns (did, created_ms) VALUES (?, ?)", did, nowMs);
  else sql.exec("DELETE FROM takedowns WHERE did = ?", did);
}
