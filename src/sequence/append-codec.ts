// The frames of the append socket (append-socket.ts): an ingester's batch as one binary message,
// and the Sequencer's answer as one. Bytes, not JSON: a batch is mostly frames that are already
// bytes, and a JSON or structured-clone copy of them would cost more CPU on both sides than the
// copy into one buffer this does. Pure; the layout is private to the two ends of the socket
// (both ship in the same Worker), so it carries no version.
//
//   batch:  u8 1 | u32 id | u16 hosts, each str | u32 events, each (u16 host, f64 upstreamSeq,
//           str did, u32 len, frame bytes) | u16 epochs, each (str host, f64 epoch)
//   result: u8 2 | u32 id | u32 accepted | u32 duplicates | f64 firstSeq | f64 lastSeq (NaN: null)
//           | u16 cursors, each (str host, f64 seq) | u32 dropped, each (str host, f64 seq, str reason)
//   error:  u8 3 | u32 id | str message
//   delivery:      u8 4 | u32 0 | u16 fanouts, each str | f64 firstSeq | f64 lastSeq | u32 len,
//                  time anchors (log/time-anchors.ts packed form) | records (the rest)
//   relayRefused:  u8 5 | u32 0 | str fanout
//   relayLost:     u8 6 | u32 0 | str fanout
//
// A delivery is a batch of sequenced records the Sequencer asks the ingester to relay to each of
// the Fanouts `fanouts` (fanout/delivery-relay.ts), which receive the same bytes: one message
// received by the ingester for every Fanout the same delivery goes to; relayRefused is the
// ingester's word that it could not reach one Fanout, relayLost that its socket to one Fanout
// broke (deliveries sent on it may not have arrived).
//
// where str is u16 length + UTF-8. Seqs are f64: exact up to 2^53, as everywhere in the relay.

import type { Delivery } from "../fanout/delivery-queues";
import { decodeAnchors, encodeAnchors } from "../log/time-anchors";

export type IngestEvent = {
  /** Upstream host, or "" for an event the relay makes itself (e.g. an admin takedown). */
  host: string;
  upstreamSeq: number;
  frame: Uint8Array;
  /** The account the event is about (`repo` or `did` of the body): relay-wide checks use it. */
  did: string;
};

/** An event the Sequencer refused to store (counted by the ingester under `reason`). */
export type DroppedEvent = { host: string; upstreamSeq: number; reason: string };

export type AppendResult = {
  accepted: number;
  duplicates: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** For each host in the batch, the last upstream seq now durably sequenced. */
  hostCursors: Record<string, number>;
  /**
   * Events not stored, each counted as a drop (e.g. `RepoTakendown`, `TooBigToStore`). Their
   * upstream seqs still count as sequenced in `hostCursors`: they are never offered again.
   */
  dropped: DroppedEvent[];
};

/** A batch as an ingester sends it (Sequencer.appendBatch's argument). */
export type AppendBatch = {
  events: IngestEvent[];
  hostEpochs?: Record<string, number>;
};

export type AppendFrame =
  | { kind: "batch"; id: number; batch: AppendBatch }
  | { kind: "result"; id: number; result: AppendResult }
  | { kind: "error"; id: number; message: string }
  | { kind: "delivery"; delivery: RelayedDelivery }
  | { kind: "relayRefused"; fanout: string }
  | { kind: "relayLost"; fanout: string };

/** A Fanout delivery relayed by an ingester: Fanout.deliver's argument and the Fanouts it is for. */
export type RelayedDelivery = Delivery & { fanouts: string[] };

const BATCH = 1;
const RESULT = 2;
const ERROR = 3;
const DELIVERY = 4;
const RELAY_REFUSED = 5;
const RELAY_LOST = 6;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Appends to a growing buffer; one copy per frame. */
class Writer {
  #bytes: Uint8Array;
  #view: DataView;
  #at = 0;

  /** `expectedBytes`: the message's size when known, so the buffer is allocated once. */
  constructor(expectedBytes = 1024) {
    this.#bytes = new Uint8Array(expectedBytes);
    this.#view = new DataView(this.#bytes.buffer);
  }

  #room(n: number): void {
    if (this.#at + n <= this.#bytes.byteLength) return;
    let size = this.#bytes.byteLength * 2;
    while (size < this.#at + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#bytes.subarray(0, this.#at));
    this.#bytes = grown;
    this.#view = new DataView(grown.buffer);
  }

  u8(n: number): void {
    this.#room(1);
    this.#view.setUint8(this.#at, n);
    this.#at += 1;
  }

  u16(n: number): void {
    if (n > 0xffff) throw new RangeError(`too many entries for an append frame: ${n}`);
    this.#room(2);
    this.#view.setUint16(this.#at, n);
    this.#at += 2;
  }

  u32(n: number): void {
    this.#room(4);
    this.#view.setUint32(this.#at, n);
    this.#at += 4;
  }

  f64(n: number): void {
    this.#room(8);
    this.#view.setFloat64(this.#at, n);
    this.#at += 8;
  }

  str(s: string): void {
    const bytes = encoder.encode(s);
    this.u16(bytes.byteLength);
    this.raw(bytes);
  }

  raw(bytes: Uint8Array): void {
    this.#room(bytes.byteLength);
    this.#bytes.set(bytes, this.#at);
    this.#at += bytes.byteLength;
  }

  done(): Uint8Array {
    // sized exactly (encodeBatch's and encodeDelivery's estimate): the buffer, not a copy of it
    return this.#at === this.#bytes.byteLength ? this.#bytes : this.#bytes.slice(0, this.#at);
  }
}

class Reader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #need(n: number): number {
    const at = this.#at;
    if (at + n > this.#bytes.byteLength) throw new RangeError("truncated append frame");
    this.#at += n;
    return at;
  }

  u8(): number {
    return this.#view.getUint8(this.#need(1));
  }

  u16(): number {
    return this.#view.getUint16(this.#need(2));
  }

  u32(): number {
    return this.#view.getUint32(this.#need(4));
  }

  f64(): number {
    return this.#view.getFloat64(this.#need(8));
  }

  str(): string {
    const n = this.u16();
    const at = this.#need(n);
    return decoder.decode(this.#bytes.subarray(at, at + n));
  }

  raw(n: number): Uint8Array {
    const at = this.#need(n);
    return this.#bytes.slice(at, at + n);
  }

  /** Every byte left, as a view (no copy: a delivery's records are passed on as they are). */
  rest(): Uint8Array {
    const at = this.#need(this.#bytes.byteLength - this.#at);
    return this.#bytes.subarray(at);
  }

  end(): void {
    if (this.#at !== this.#bytes.byteLength) throw new RangeError("trailing bytes in append frame");
  }
}

/**
 * The encoded size of a batch whose strings are ASCII (hostnames and DIDs are, by their syntax):
 * a backlog's batches are ~0.2–2 MB, which a buffer doubling from 1 KB reallocated and copied ten
 * times over (a 250-frame batch of 488 KB: ~545 µs to encode before, ~390 µs after).
 */
function batchBytes(batch: AppendBatch, hosts: Map<string, number>): number {
  let bytes = 1 + 4 + 2 + 4 + 2;
  for (const host of hosts.keys()) bytes += 2 + host.length;
  for (const e of batch.events) bytes += 2 + 8 + 2 + e.did.length + 4 + e.frame.byteLength;
  for (const host of Object.keys(batch.hostEpochs ?? {})) bytes += 2 + host.length + 8;
  return bytes;
}

export function encodeBatch(id: number, batch: AppendBatch): Uint8Array {
  const hosts = new Map<string, number>();
  for (const e of batch.events) if (!hosts.has(e.host)) hosts.set(e.host, hosts.size);
  const w = new Writer(batchBytes(batch, hosts));
  w.u8(BATCH);
  w.u32(id);
  w.u16(hosts.size);
  for (const host of hosts.keys()) w.str(host);
  w.u32(batch.events.length);
  for (const e of batch.events) {
    w.u16(hosts.get(e.host) as number);
    w.f64(e.upstreamSeq);
    w.str(e.did);
    w.u32(e.frame.byteLength);
    w.raw(e.frame);
  }
  const epochs = Object.entries(batch.hostEpochs ?? {});
  w.u16(epochs.length);
  for (const [host, epoch] of epochs) {
    w.str(host);
    w.f64(epoch);
  }
  return w.done();
}

export function encodeResult(id: number, result: AppendResult): Uint8Array {
  const w = new Writer();
  w.u8(RESULT);
  w.u32(id);
  w.u32(result.accepted);
  w.u32(result.duplicates);
  w.f64(result.firstSeq ?? Number.NaN);
  w.f64(result.lastSeq ?? Number.NaN);
  const cursors = Object.entries(result.hostCursors);
  w.u16(cursors.length);
  for (const [host, seq] of cursors) {
    w.str(host);
    w.f64(seq);
  }
  w.u32(result.dropped.length);
  for (const d of result.dropped) {
    w.str(d.host);
    w.f64(d.upstreamSeq);
    w.str(d.reason);
  }
  return w.done();
}

export function encodeError(id: number, message: string): Uint8Array {
  const w = new Writer();
  w.u8(ERROR);
  w.u32(id);
  // a u16-long string: an error message longer than that is cut
  w.str(message.slice(0, 1000));
  return w.done();
}

export function encodeDelivery(d: RelayedDelivery): Uint8Array {
  const anchors = encodeAnchors(d.anchors);
  // sized up front as a batch is (batchBytes): a delivery carries tens of KB of records at the
  // network's rate, and Fanout names are ASCII
  let bytes = 1 + 4 + 2 + 8 + 8 + 4 + anchors.byteLength + d.records.byteLength;
  for (const fanout of d.fanouts) bytes += 2 + fanout.length;
  const w = new Writer(bytes);
  w.u8(DELIVERY);
  w.u32(0);
  w.u16(d.fanouts.length);
  for (const fanout of d.fanouts) w.str(fanout);
  w.f64(d.firstSeq);
  w.f64(d.lastSeq);
  w.u32(anchors.byteLength);
  w.raw(anchors);
  w.raw(d.records);
  return w.done();
}

export function encodeRelayRefused(fanout: string): Uint8Array {
  return encodeRelayNotice(RELAY_REFUSED, fanout);
}

export function encodeRelayLost(fanout: string): Uint8Array {
  return encodeRelayNotice(RELAY_LOST, fanout);
}

function encodeRelayNotice(kind: number, fanout: string): Uint8Array {
  const w = new Writer();
  w.u8(kind);
  w.u32(0);
  w.str(fanout);
  return w.done();
}

/** Decodes any append frame; throws (RangeError, or the anchors' Error) on a malformed one. */
export function decodeFrame(bytes: Uint8Array): AppendFrame {
  const r = new Reader(bytes);
  const kind = r.u8();
  const id = r.u32();
  if (kind === BATCH) {
    const hosts: string[] = [];
    for (let n = r.u16(); n > 0; n--) hosts.push(r.str());
    const events: IngestEvent[] = [];
    for (let n = r.u32(); n > 0; n--) {
      const host = hosts[r.u16()];
      if (host === undefined) throw new RangeError("unknown host index in append frame");
      const upstreamSeq = r.f64();
      const did = r.str();
      const frame = r.raw(r.u32());
      events.push({ host, upstreamSeq, frame, did });
    }
    const batch: AppendBatch = { events };
    const epochs = r.u16();
    if (epochs > 0) {
      const hostEpochs: Record<string, number> = {};
      for (let n = epochs; n > 0; n--) hostEpochs[r.str()] = r.f64();
      batch.hostEpochs = hostEpochs;
    }
    r.end();
    return { kind: "batch", id, batch };
  }
  if (kind === RESULT) {
    const accepted = r.u32();
    const duplicates = r.u32();
    const first = r.f64();
    const last = r.f64();
    const hostCursors: Record<string, number> = {};
    for (let n = r.u16(); n > 0; n--) hostCursors[r.str()] = r.f64();
    const dropped: AppendResult["dropped"] = [];
    for (let n = r.u32(); n > 0; n--)
      dropped.push({ host: r.str(), upstreamSeq: r.f64(), reason: r.str() });
    r.end();
    return {
      kind: "result",
      id,
      result: {
        accepted,
        duplicates,
        firstSeq: Number.isNaN(first) ? null : first,
        lastSeq: Number.isNaN(last) ? null : last,
        hostCursors,
        dropped,
      },
    };
  }
  if (kind === DELIVERY) {
    const fanouts: string[] = [];
    for (let n = r.u16(); n > 0; n--) fanouts.push(r.str());
    const firstSeq = r.f64();
    const lastSeq = r.f64();
    const anchors = decodeAnchors(r.raw(r.u32()));
    return {
      kind: "delivery",
      delivery: { fanouts, firstSeq, lastSeq, anchors, records: r.rest() },
    };
  }
  if (kind === RELAY_REFUSED || kind === RELAY_LOST) {
    const fanout = r.str();
    r.end();
    return { kind: kind === RELAY_REFUSED ? "relayRefused" : "relayLost", fanout };
  }
  if (kind === ERROR) {
    const message = r.str();
    r.end();
    return { kind: "error", id, message };
  }
  throw new RangeError(`unknown append frame kind ${kind}`);
}
