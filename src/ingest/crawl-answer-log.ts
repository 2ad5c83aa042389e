import { type CrawlAnswer, MAX_CRAWL_ANSWERS_SHOWN as MAX_CRAWL_ANSWERS } from "../status/summary";

// requestCrawl's last answer per hostname, for the host's status page ("why does my host do
// nothing after requestCrawl?"). One row written per requestCrawl with a valid hostname (refused
// ones too: those are the answers an operator looks for); anyone may call requestCrawl, so at
// most MAX_CRAWL_ANSWERS names are kept, the oldest forgotten first.

export const CRAWL_ANSWERS_SCHEMA = `
CREATE TABLE IF NOT EXISTS crawl_answers (
  hostname TEXT PRIMARY KEY,
  at_ms INTEGER NOT NULL,
  answer TEXT NOT NULL
) WITHOUT ROWID;`;

export function saveCrawlAnswer(sql: SqlStorage, hostname: string, answer: CrawlAnswer): void {
  const known =
    sql.exec("SELECT 1 FROM crawl_answers WHERE hostname = ?", hostname).toArray().length > 0;
  sql.exec(
    `INSERT INTO crawl_answers (hostname, at_ms, answer) VALUES (?, ?, ?)
     ON CONFLICT(hostname) DO UPDATE SET at_ms = excluded.at_ms, answer = excluded.answer`,
    hostname,
    answer.atMs,
    JSON.stringify(answer),
  );
  // only a new name can take the table past its bound: a known one's answer (a host pinging
  // requestCrawl again) reads one row, not the whole table
  if (known) return;
  // reads the (bounded) table; writes nothing unless it grew past the bound
  sql.exec(
    `DELETE FROM crawl_answers WHERE hostname NOT IN
       (SELECT hostname FROM crawl_answers ORDER BY at_ms DESC LIMIT ?)`,
    MAX_CRAWL_ANSWERS,
  );
}

export function loadCrawlAnswer(sql: SqlStorage, hostname: string): CrawlAnswer | null {
  const row = sql
    .exec<{ answer: string }>("SELECT answer FROM crawl_answers WHERE hostname = ?", hostname)
    .toArray()[0];
  return row ? (JSON.parse(row.answer) as CrawlAnswer) : null;
}
