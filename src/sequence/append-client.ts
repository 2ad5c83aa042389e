import type { Env } from "../env";
import { RpcSession, type RpcSessionOptions, SESSION_TIMING } from "../rpc-session";
import { sequencerStub } from "../stubs";
import type { AppendBatch, AppendResult, AppendSession } from "./sequencer";

/**
 * An ingester's way to the Sequencer: its batches go over one append session
 * (Sequencer.openAppendSession, rpc-session.ts), one billed request for all of them instead of
 * one per batch. Opened at the first batch, closed after SESSION_TIMING.idleCloseMs without one,
 * so a quiet relay lets the Sequencer sleep.
 *
 * A batch whose call fails (the Sequencer restarted or was evicted: the session's stub throws)
 * is sent once more on a fresh session. That cannot duplicate an event: the failed call either
 * committed the batch or not (appendEvents writes it in one transaction), and if it did, the
 * Sequencer's per-host cursor, written in that same transaction, is at or past every upstream
 * seq of the batch, so appendEvents counts each of them as a duplicate (hot-log.ts) and assigns
 * no seq. Events without a host (relay-made, host "") are not deduplicated that way and must not
 * be sent through here; the ingester sends none. A second failure is the caller's to handle.
 */
export class AppendClient {
  readonly #session: RpcSession<Rpc.Stub<AppendSession>>;

  constructor(env: Env, options: RpcSessionOptions = SESSION_TIMING) {
    this.#session = new RpcSession(() => sequencerStub(env).openAppendSession(), options);
    this.#env = env;
  }

  readonly #env: Env;

  /**
   * Appends a batch; resolves once it is durable (Sequencer.appendBatch). Below
   * SESSION_TIMING.openAtCallsPerSecond a batch is a plain call (one request each) and the
   * Sequencer may sleep between them.
   */
  append(batch: AppendBatch): Promise<AppendResult> {
    return this.#session.call(
      (session) => session.append(batch),
      true,
      () => sequencerStub(this.#env).appendBatch(batch),
    );
  }

  /** Sessions opened so far (each one billed request to the Sequencer). */
  get sessionsOpened(): number {
    return this.#session.opened;
  }

  get isOpen(): boolean {
    return this.#session.isOpen;
  }

  close(): void {
    this.#session.close();
  }
}
