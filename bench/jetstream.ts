import { lexToJson } from "@atproto/lexicon";
import { cborToLexRecord } from "@atproto/repo";
import { finishMessage, JetstreamEvent } from "../src/jetstream/events";
import { JetstreamFilter } from "../src/jetstream/filter";
import { ALL_EVENTS } from "../src/jetstream/options";
import { loadJetstreamZstd } from "../src/jetstream/zstd";
import { encodeRecords, iterateRecords } from "../src/log/records";
import { readCar } from "../src/protocol/car";
import { decodeFrame } from "../src/protocol/frame";
import { benchAccounts, opsPerSecond } from "./fixtures";
import { reportFigure, reportRatio } from "./report";

// What a Fanout spends per event on Jetstream consumers, in Node (one core, no sockets): the
// conversion of stored frames (real commits by @atproto/repo) to Jetstream JSON for one
// unfiltered consumer and for 100 consumers with different filters, beside what the same loop
// costs for subscribeRepos consumers (frames sent as stored). The reference for the conversion
// is the straightforward way: decode the frame, read the CAR (hashing its blocks), decode the
// record with @atproto/repo and write it with @atproto/lexicon's lexToJson, per consumer.
export default async function main(): Promise<void> {
  const accounts = await benchAccounts(20, 20, 1);
  const frames = accounts.flatMap((a) => a.commits.map((c) => c.frame));
  const records = encodeRecords(frames.map((frame, i) => ({ seq: i + 1, frame })));
  const events = frames.length;
  const timeUs = Date.now() * 1000;
  const dids = accounts.map((a) => a.did);

  let sink = 0;
  const frameBytes = frames.reduce((n, f) => n + f.byteLength, 0);
  const subscribeRepos = opsPerSecond(() => {
    for (const record of iterateRecords(records)) sink += record.frame.byteLength;
  });

  const all = new JetstreamFilter(ALL_EVENTS);
  let jsonBytes = 0;
  for (const record of iterateRecords(records))
    for (const m of new JetstreamEvent(record.seq, record.frame).messagesFor(all))
      jsonBytes += new TextEncoder().encode(finishMessage(m, timeUs)).byteLength;
  // compress=true: each message compressed once with Jetstream's dictionary (zstd.ts), the same
  // frame then sent to every compressing consumer that wants it
  const zstd = await loadJetstreamZstd();
  const messages: string[] = [];
  for (const record of iterateRecords(records))
    for (const m of new JetstreamEvent(record.seq, record.frame).messagesFor(all))
      messages.push(finishMessage(m, timeUs));
  const zstdBytes = messages.reduce((n, m) => n + zstd.compress(m).byteLength, 0);
  const compression = opsPerSecond(() => {
    for (const m of messages) sink += zstd.compress(m).byteLength;
  });
  const oneConsumer = opsPerSecond(() => {
    for (const record of iterateRecords(records))
      for (const m of new JetstreamEvent(record.seq, record.frame).messagesFor(all))
        sink += finishMessage(m, timeUs).length;
  });
  const reference = opsPerSecond(() => {
    for (const record of iterateRecords(records)) {
      const frame = decodeFrame(record.frame);
      if (frame.kind !== "commit") continue;
      const blocks = readCar(frame.body.blocks).blocks;
      for (const op of frame.body.ops) {
        const block = blocks.get(String(op.cid)) as Uint8Array;
        const [collection, rkey] = op.path.split("/");
        sink += JSON.stringify({
          did: frame.body.repo,
          time_us: timeUs,
          kind: "commit",
          commit: {
            rev: frame.body.rev,
            operation: op.action,
            collection,
            rkey,
            record: lexToJson(cborToLexRecord(block)),
            cid: String(op.cid),
          },
        }).length;
      }
    }
  });

  // 100 consumers, each wanting one account's posts, or a collection nobody writes, or everything
  // from a prefix: most events match few of them
  const filters = Array.from({ length: 100 }, (_, i) => {
    if (i % 10 === 9)
      return new JetstreamFilter({
        ...ALL_EVENTS,
        wantedCollections: { exact: [], prefixes: ["app.bsky.feed."] },
      });
    if (i % 2 === 0)
      return new JetstreamFilter({ ...ALL_EVENTS, wantedDids: [dids[i % dids.length] as string] });
    return new JetstreamFilter({
      ...ALL_EVENTS,
      wantedCollections: { exact: [`com.example.nothing${i}`], prefixes: [] },
    });
  });
  let sent = 0;
  for (const record of iterateRecords(records)) {
    const event = new JetstreamEvent(record.seq, record.frame);
    for (const filter of filters) sent += event.messagesFor(filter).length;
  }
  const hundred = opsPerSecond(() => {
    for (const record of iterateRecords(records)) {
      const event = new JetstreamEvent(record.seq, record.frame); // shared by the Fanout's consumers
      for (const filter of filters)
        for (const m of event.messagesFor(filter)) sink += finishMessage(m, timeUs).length;
    }
  });

  const nothing = new JetstreamFilter({
    ...ALL_EVENTS,
    wantedCollections: { exact: ["com.example.nothing"], prefixes: [] },
  });
  const oneMatchingNothing = opsPerSecond(() => {
    for (const record of iterateRecords(records))
      sink += new JetstreamEvent(record.seq, record.frame).messagesFor(nothing).length;
  });

  reportRatio(
    "jetstream conversion, one unfiltered consumer (1-op commits)",
    oneConsumer * events,
    reference * events,
    "events/s",
  );
  reportFigure(
    "jetstream, one consumer whose filter matches nothing (frame decoded, no record)",
    oneMatchingNothing * events,
    "events/s",
  );
  reportFigure("subscribeRepos send loop, one consumer", subscribeRepos * events, "events/s");
  reportFigure(
    "jetstream, 100 consumers with different filters (events through all 100)",
    hundred * events,
    "events/s",
    `${(sent / events).toFixed(1)} messages per event`,
  );
  reportFigure("bytes per event, subscribeRepos frame", frameBytes / events, "B");
  reportFigure("bytes per event, Jetstream JSON (uncompressed)", jsonBytes / events, "B");
  reportFigure(
    "bytes per event, Jetstream JSON compressed (compress=true, zstd + Jetstream's dictionary)",
    zstdBytes / events,
    "B",
    `${((100 * zstdBytes) / jsonBytes).toFixed(0)}% of the JSON`,
  );
  reportFigure(
    "jetstream zstd compression (once per message per Fanout, shared by its compressing consumers)",
    compression * events,
    "events/s",
  );
  if (sink < 0) console.log(sink);
}
