import type { Fanout } from "./fanout/fanout";
import type { HostDirectory } from "./ingest/host-directory";
import type { HostIngester } from "./ingest/host-ingester";
import type { RepoIndex } from "./ingest/repo-index";
import type { Sequencer } from "./sequence/sequencer";

/** The Worker's bindings, as declared in wrangler.toml. Read typed values through `readConfig`. */
export interface Env {
  SEQUENCER: DurableObjectNamespace<Sequencer>;
  FANOUT: DurableObjectNamespace<Fanout>;
  HOST_INGESTER: DurableObjectNamespace<HostIngester>;
  HOST_DIRECTORY: DurableObjectNamespace<HostDirectory>;
  REPO_INDEX: DurableObjectNamespace<RepoIndex>;
  EVENT_LOG: R2Bucket;
  DEV_MODE?: string;
  PLC_URL?: string;
  PLC_RETRY_AFTER_SECONDS?: string;
  IDENTITY_STALE_GRACE_SECONDS?: string;
  ADMIN_TOKEN?: string;
  FIRST_SEQ?: string;
  REPLAY_WINDOW_HOURS?: string;
  INGEST_SHARDS?: string;
  REPO_INDEX_SHARDS?: string;
  FANOUT_SHARDS?: string;
  FANOUT_REGIONS?: string;
  HOST_IDLE_AFTER_SECONDS?: string;
  HOST_STALL_AFTER_SECONDS?: string;
  HOST_MAX_FAILURES?: string;
  NEW_HOST_EVENTS_PER_SECOND?: string;
  NEW_HOST_MAX_ACCOUNTS?: string;
  TRUSTED_HOST_SUFFIXES?: string;
  TRUSTED_HOST_EVENTS_PER_SECOND?: string;
  TRUSTED_HOST_MAX_ACCOUNTS?: string;
  NEW_HOSTS_PER_DAY?: string;
  REQUEST_CRAWL_PER_IP_PER_MINUTE?: string;
  SEGMENT_MAX_BYTES?: string;
  SEGMENT_MAX_AGE_SECONDS?: string;
  INGEST_BATCH_WINDOW_MS?: string;
  SEQUENCER_GROUP_COMMIT_MS?: string;
  HOST_REPORT_INTERVAL_SECONDS?: string;
  HOST_DIRECTORY_PERSIST_SECONDS?: string;
  FANOUT_DELIVERY_INTERVAL_MS?: string;
  CONSUMER_MIN_BYTES_PER_SECOND?: string;
  CONSUMER_MAX_BACKLOG_BYTES?: string;
  FANOUT_MAX_CONCURRENT_REPLAYS?: string;
  AUTO_PIN_EVENTS_PER_SECOND?: string;
  AUTO_UNPIN_EVENTS_PER_SECOND?: string;
  AUTO_PLACEMENT_WINDOW_SECONDS?: string;
}
