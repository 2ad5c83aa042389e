import WebSocket from "ws";
import { decodeFrame, type Frame } from "../../src/protocol/frame";

// Records every frame of a subscribeRepos stream (a PDS's or the relay's) with a key that
// identifies the event independently of who sequenced it, so two streams can be compared.

export type RecordedEvent = { seq: number | null; kind: Frame["kind"]; key: string; frame: Frame };

export function eventKey(frame: Frame): string {
  const b = frame.body as unknown as Record<string, unknown>;
  switch (frame.kind) {
    case "commit":
      return `commit ${frame.body.repo} ${frame.body.rev}`;
    case "sync":
      return `sync ${frame.body.did} ${frame.body.rev}`;
    case "identity":
      return `identity ${frame.body.did} ${frame.body.time} ${frame.body.handle ?? ""}`;
    case "account":
      return `account ${frame.body.did} ${frame.body.time} ${frame.body.active} ${frame.body.status ?? ""}`;
    default:
      return `${frame.kind} ${JSON.stringify(b)}`;
  }
}

export type StreamRecorder = {
  events: RecordedEvent[];
  errors: string[];
  closed: boolean;
  ready: Promise<void>;
  close(): void;
  waitFor(
    predicate: (events: RecordedEvent[]) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<void>;
};

export function recordStream(
  url: string,
  options: { headers?: Record<string, string> } = {},
): StreamRecorder {
  const ws = new WebSocket(url, { headers: options.headers });
  const recorder: StreamRecorder = {
    events: [],
    errors: [],
    closed: false,
    ready: new Promise((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    }),
    close: () => ws.close(),
    async waitFor(predicate, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(recorder.events)) {
        if (Date.now() > deadline) {
          throw new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; have ${recorder.events.length} events, last seq ${recorder.events.at(-1)?.seq}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
  ws.on("message", (data: Buffer) => {
    try {
      const frame = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      const seq = "seq" in frame.body ? (frame.body as { seq: number }).seq : null;
      recorder.events.push({ seq, kind: frame.kind, key: eventKey(frame), frame });
    } catch (err) {
      recorder.errors.push(String(err));
    }
  });
  ws.on("close", () => {
    recorder.closed = true;
  });
  return recorder;
}

/**
 * Reads a subscribeRepos stream from `cursor` until an event with seq >= `throughSeq` arrived
 * (or, with throughSeq 0, until it has been silent for a second), then closes it.
 */
export async function readLog(
  url: string,
  cursor: number,
  throughSeq: number,
  timeoutMs: number,
  headers?: Record<string, string>,
): Promise<RecordedEvent[]> {
  const recorder = recordStream(`${url}?cursor=${cursor}`, { headers });
  try {
    await recorder.ready;
    if (throughSeq > 0) {
      await recorder.waitFor(
        (events) => (events.at(-1)?.seq ?? 0) >= throughSeq || recorder.closed,
        timeoutMs,
        `${url} through seq ${throughSeq}`,
      );
    } else {
      await new Promise((r) => setTimeout(r, 1000));
    }
    return recorder.events;
  } finally {
    recorder.close();
  }
}

/**
 * A consumer that keeps its place: when its socket closes (the relay died) it reconnects to
 * `url()` with the last seq it saw, as a well-behaved firehose consumer does. `events` is
 * everything it ever received, so a test can check it got each seq once.
 */
export type ResumingConsumer = {
  events: RecordedEvent[];
  errors: string[];
  reconnects: number;
  lastSeq(): number | undefined;
  close(): void;
};

export function resumingConsumer(url: () => string, startCursor?: number): ResumingConsumer {
  let current: StreamRecorder | undefined;
  let stopped = false;
  const consumer: ResumingConsumer = {
    events: [],
    errors: [],
    reconnects: 0,
    lastSeq: () => {
      for (let i = consumer.events.length - 1; i >= 0; i--) {
        const seq = consumer.events[i]?.seq;
        if (seq !== null && seq !== undefined) return seq;
      }
      return undefined;
    },
    close() {
      stopped = true;
      current?.close();
    },
  };
  const connect = (cursor: number | undefined) => {
    const recorder = recordStream(`${url()}${cursor === undefined ? "" : `?cursor=${cursor}`}`);
    current = recorder;
    const push = recorder.events.push.bind(recorder.events);
    recorder.events.push = (...items: RecordedEvent[]) => {
      consumer.events.push(...items);
      return push(...items);
    };
    recorder.ready.catch(() => undefined);
    const retry = () => {
      if (stopped || current !== recorder) return;
      consumer.errors.push(...recorder.errors);
      consumer.reconnects++;
      setTimeout(() => {
        if (!stopped) connect(consumer.lastSeq() ?? startCursor);
      }, 500);
    };
    // "close" follows "error" for ws, so one handler covers both
    const poll = setInterval(() => {
      if (stopped) clearInterval(poll);
      else if (recorder.closed) {
        clearInterval(poll);
        retry();
      }
    }, 100);
  };
  connect(startCursor);
  return consumer;
}
