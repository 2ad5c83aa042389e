import { iterateRecords } from "../log/records";
import { JetstreamEvent, type PendingMessage } from "./events";
import { JetstreamFilter } from "./filter";
import type { JetstreamOptions } from "./options";
import type { TimeOf } from "./time";
import { jetstreamZstd, loadJetstreamZstd } from "./zstd";

// The Jetstream side of a Fanout: which sockets are Jetstream consumers, their filters, and the
// sending of a run of records to one of them as JSON text messages. The Fanout keeps doing what
// it does for every consumer (cursor by seq, replay, cutover, live, budget); only the bytes put
// on the socket differ. Decoded events are shared by the Fanout's consumers through a cache by
// seq, so a batch is decoded once however many consumers read it, and a record is converted
// only when some consumer's filter wants it. For `compress=true` consumers a message is
// compressed once (zstd with Jetstream's dictionary, zstd.ts) and the same bytes are sent, as one
// binary message, to every such consumer that wants it.

/** Kept in the socket attachment, beside the Fanout's cursor, so hibernation keeps it. */
export type JetstreamAttachment = {
  /** requireHello: nothing is sent before the first options_update. */
  waitingHello: boolean;
  /** The options, when small enough for the attachment (2 KB); else under `optionsKey`. */
  options: JetstreamOptions | null;
  optionsKey: string | null;
  /** compress=true: messages go as zstd frames (binary). Absent in attachments from before it. */
  compress?: boolean;
};

/** Storage key prefix of options too large for the attachment (one row per such consumer). */
const OPTIONS_KEY_PREFIX = "jetstreamOptions:";
/** Options whose JSON is longer than this go to storage (attachments are capped at 2 KB). */
const ATTACHMENT_OPTIONS_CHARS = 1500;
/** Decoded events kept for the Fanout's consumers. */
const EVENT_CACHE_SIZE = 20_000;
/** Compressed messages kept (by seq, op and time_us) for the other compressing consumers. */
const COMPRESSED_CACHE_SIZE = 10_000;

const utf8 = new TextEncoder();

export class JetstreamConsumers {
  readonly #storage: DurableObjectStorage;
  readonly #filters = new WeakMap<WebSocket, JetstreamFilter>();
  #stored = new Map<string, JetstreamOptions>();
  #events = new Map<number, JetstreamEvent>();
  #compressed = new Map<string, Uint8Array>();

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
  }

  /**
   * Reads the options kept in storage (call once when the object loads), and loads the
   * compressor if a consumer that survived hibernation needs it (sending is synchronous).
   */
  async load(sockets: readonly JetstreamAttachment[]): Promise<void> {
    const stored = await this.#storage.list<JetstreamOptions>({ prefix: OPTIONS_KEY_PREFIX });
    this.#stored = new Map(stored);
    if (sockets.some((att) => att.compress)) await loadJetstreamZstd();
  }

  /** A new consumer's attachment part, its options stored where they fit. */
  async attach(
    options: JetstreamOptions,
    waitingHello: boolean,
    compress: boolean,
  ): Promise<JetstreamAttachment> {
    if (compress) await loadJetstreamZstd();
    return this.#place({ waitingHello, options: null, optionsKey: null, compress }, options);
  }

  /** New options for a consumer (options_update): returns its new attachment part. */
  async update(
    ws: WebSocket,
    current: JetstreamAttachment,
    options: JetstreamOptions,
  ): Promise<JetstreamAttachment> {
    this.#filters.set(ws, new JetstreamFilter(options));
    return this.#place(current, options);
  }

  async #place(
    current: JetstreamAttachment,
    options: JetstreamOptions,
  ): Promise<JetstreamAttachment> {
    if (JSON.stringify(options).length <= ATTACHMENT_OPTIONS_CHARS) {
      if (current.optionsKey) await this.forget(current);
      return { ...current, options, optionsKey: null };
    }
    const optionsKey = current.optionsKey ?? `${OPTIONS_KEY_PREFIX}${crypto.randomUUID()}`;
    await this.#storage.put(optionsKey, options);
    this.#stored.set(optionsKey, options);
    return { ...current, options: null, optionsKey };
  }

  /** The consumer is gone: drops its stored options, if any. */
  async forget(att: JetstreamAttachment): Promise<void> {
    if (!att.optionsKey) return;
    this.#stored.delete(att.optionsKey);
    await this.#storage.delete(att.optionsKey);
  }

  #filter(ws: WebSocket, att: JetstreamAttachment): JetstreamFilter {
    let filter = this.#filters.get(ws);
    if (!filter) {
      const options = att.options ?? (att.optionsKey ? this.#stored.get(att.optionsKey) : null);
      // options lost from storage would be a bug; sending everything is the visible failure
      filter = new JetstreamFilter(
        options ?? { wantedCollections: null, wantedDids: null, maxMessageSizeBytes: 0 },
      );
      this.#filters.set(ws, filter);
    }
    return filter;
  }

  #event(seq: number, frame: Uint8Array): JetstreamEvent {
    let event = this.#events.get(seq);
    if (!event) {
      if (this.#events.size >= EVENT_CACHE_SIZE) this.#events = new Map();
      event = new JetstreamEvent(seq, frame);
      this.#events.set(seq, event);
    }
    return event;
  }

  /** One message as a zstd frame, compressed once for all the consumers that get it. */
  #compress(seq: number, message: PendingMessage, timeUs: number, text: string): Uint8Array {
    const key = `${seq}/${message.index}/${timeUs}`;
    let frame = this.#compressed.get(key);
    if (!frame) {
      const zstd = jetstreamZstd();
      // attach() and load() load it before any compressing consumer can be sent to
      if (!zstd) throw new Error("zstd is not loaded");
      if (this.#compressed.size >= COMPRESSED_CACHE_SIZE) this.#compressed = new Map();
      frame = zstd.compress(text);
      this.#compressed.set(key, frame);
    }
    return frame;
  }

  /**
   * Sends the messages of the records with seq > afterSeq that the consumer wants, each timed
   * `timeOf(seq)`. Returns the last seq passed over and the bytes sent (compressed, for a
   * compressing consumer).
   */
  send(
    ws: WebSocket,
    att: JetstreamAttachment,
    records: Uint8Array,
    afterSeq: number,
    timeOf: TimeOf,
  ): { last: number; bytes: number } {
    const filter = this.#filter(ws, att);
    let last = afterSeq;
    let bytes = 0;
    for (const record of iterateRecords(records)) {
      if (record.seq <= last) continue;
      last = record.seq;
      let messages: ReturnType<JetstreamEvent["messagesFor"]>;
      try {
        messages = this.#event(record.seq, record.frame).messagesFor(filter);
      } catch (err) {
        // a stored frame the relay accepted always decodes; one that does not is skipped, not
        // allowed to stop the stream
        console.error(
          JSON.stringify({
            msg: "jetstream conversion failed",
            seq: record.seq,
            error: String(err),
          }),
        );
        continue;
      }
      if (messages.length === 0) continue;
      const timeUs = timeOf(record.seq);
      for (const message of messages) {
        const text = `${message.prefix}${timeUs}${message.body}`;
        const size =
          filter.maxMessageSizeBytes > 0 && text.length * 3 > filter.maxMessageSizeBytes
            ? utf8.encode(text).byteLength
            : text.length;
        // the size limit is on the JSON, compressed or not, as in Jetstream today: a compressed
        // size would let a large record past a small limit
        if (!filter.fits(size)) continue;
        if (att.compress) {
          const frame = this.#compress(record.seq, message, timeUs, text);
          ws.send(frame);
          bytes += frame.byteLength;
        } else {
          ws.send(text);
          bytes += size;
        }
      }
    }
    return { last, bytes };
  }
}
