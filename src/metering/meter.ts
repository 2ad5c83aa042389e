// Counts what Cloudflare bills, from the code itself (docs/cost.md, `npm run cost`): SQLite rows
// written and read, Durable Object requests, alarms, WebSocket messages received, and R2
// operations and bytes. One meter per isolate (module state): in workerd, the vitest pool and
// `wrangler dev`, every object of this Worker runs in one isolate, so a test reads the whole
// relay's counters here. The counters cost two number reads per SQL statement, so they stay on
// in production too (they are never persisted or sent anywhere).

export type ObjectUnits = {
  /** SqlStorageCursor.rowsWritten summed over every statement (index rows included). */
  rowsWritten: number;
  rowsRead: number;
  /** setAlarm calls: the alarm is a row of the object's storage. */
  alarmsSet: number;
  /** RPC calls and fetches received (counted where they run); opening a session is one. */
  requests: number;
  /**
   * Calls on an `RpcTarget` this object returned (an RPC session): not billed, the session was
   * billed once as the request that opened it (meterSessionTarget).
   */
  sessionCalls: number;
  /** Alarm handler invocations: each is a billed request. */
  alarms: number;
  /** WebSocket messages received on hibernatable sockets (billed 20:1). */
  webSocketMessages: number;
  /**
   * Messages received on a WebSocket this object opened itself (an ingester's append answers):
   * Cloudflare's pages do not say whether they are billed; priced 20:1 like incoming messages.
   */
  outboundSocketMessages: number;
  /** Constructor runs: how often an instance was (re)created. */
  starts: number;
};

export type R2Units = {
  /** put, list, multipart: class A (deletes are free). */
  classA: number;
  /** get, head: class B. */
  classB: number;
  bytesPut: number;
};

export type MeterSnapshot = {
  objects: Record<string, ObjectUnits>;
  /**
   * Requests per "Class.method", to attribute them (`Sequencer.fetch` per append socket opened,
   * `Sequencer.appendBatch` per batch sent as a plain call), and session calls per
   * "Class.session.method" (`Fanout.session.deliver` per delivery), which are not requests.
   */
  calls: Record<string, number>;
  /** Per "Class: statement" (its first words) that wrote rows: executions and rows written. */
  statements: Record<string, { execs: number; rowsWritten: number }>;
  r2: R2Units;
};

const objects = new Map<string, ObjectUnits>();
const calls = new Map<string, number>();
const statements = new Map<string, { execs: number; rowsWritten: number }>();
let r2: R2Units = { classA: 0, classB: 0, bytesPut: 0 };

function unitsOf(className: string): ObjectUnits {
  let units = objects.get(className);
  if (!units) {
    units = {
      rowsWritten: 0,
      rowsRead: 0,
      alarmsSet: 0,
      requests: 0,
      sessionCalls: 0,
      alarms: 0,
      webSocketMessages: 0,
      outboundSocketMessages: 0,
      starts: 0,
    };
    objects.set(className, units);
  }
  return units;
}

export function meterSnapshot(): MeterSnapshot {
  const out: Record<string, ObjectUnits> = {};
  for (const [name, units] of objects) out[name] = { ...units };
  return {
    objects: out,
    calls: Object.fromEntries(calls),
    statements: Object.fromEntries([...statements].map(([k, v]) => [k, { ...v }])),
    r2: { ...r2 },
  };
}

/** Zeroes every counter in place (the wrapped objects keep counting into the same records). */
export function resetMeter(): void {
  for (const units of objects.values())
    for (const key of Object.keys(units) as (keyof ObjectUnits)[]) units[key] = 0;
  calls.clear();
  statements.clear();
  r2 = { classA: 0, classB: 0, bytesPut: 0 };
}

/** Counts a message received on a WebSocket an object of `className` opened (append-client.ts). */
export function meterSocketReply(className: string): void {
  unitsOf(className).outboundSocketMessages++;
}

/** Handlers that are not requests of their own (socket close and error events). */
const NOT_BILLED = new Set(["constructor", "webSocketClose", "webSocketError"]);
const meteredClasses = new WeakSet<object>();
const metered = new WeakSet<object>();

/**
 * Counts every call the runtime makes on the object, where it is billed: an RPC method or
 * fetch is one request, `alarm` one alarm, `webSocketMessage` one message (billed 20:1). The
 * class's own methods are wrapped once, on its prototype (workerd dispatches RPC through the
 * class's prototype, not through a prototype set on the instance). Calls an object makes on its
 * own public methods would count too: none of these classes does.
 */
function meterHandlers(object: object, className: string, units: ObjectUnits): void {
  const prototype = Object.getPrototypeOf(object) as object;
  if (meteredClasses.has(prototype)) return;
  meteredClasses.add(prototype);
  for (const name of Object.getOwnPropertyNames(prototype)) {
    const method = Object.getOwnPropertyDescriptor(prototype, name)?.value as unknown;
    if (NOT_BILLED.has(name) || typeof method !== "function") continue;
    const key = `${className}.${name}`;
    Object.defineProperty(prototype, name, {
      configurable: true,
      writable: true,
      value(this: object, ...args: unknown[]) {
        if (name === "alarm") units.alarms++;
        else if (name === "webSocketMessage") units.webSocketMessages++;
        else {
          units.requests++;
          calls.set(key, (calls.get(key) ?? 0) + 1);
        }
        return (method as (...a: unknown[]) => unknown).apply(this, args);
      },
    });
  }
}

/**
 * Counts the calls made on an `RpcTarget` that a Durable Object of `className` hands out as a
 * session, from the target's constructor, as `className.sessionName.method` session calls, not
 * requests. workerd dispatches them through the target's own class prototype, never through the
 * Durable Object's (checked by the counting test), so they are not counted twice.
 */
export function meterSessionTarget(target: object, className: string, sessionName: string): void {
  const units = unitsOf(className);
  const prototype = Object.getPrototypeOf(target) as object;
  if (meteredClasses.has(prototype)) return;
  meteredClasses.add(prototype);
  for (const name of Object.getOwnPropertyNames(prototype)) {
    const method = Object.getOwnPropertyDescriptor(prototype, name)?.value as unknown;
    if (name === "constructor" || typeof method !== "function") continue;
    const key = `${className}.${sessionName}.${name}`;
    Object.defineProperty(prototype, name, {
      configurable: true,
      writable: true,
      value(this: object, ...args: unknown[]) {
        units.sessionCalls++;
        calls.set(key, (calls.get(key) ?? 0) + 1);
        return (method as (...a: unknown[]) => unknown).apply(this, args);
      },
    });
  }
}

/**
 * Wires the meter into a Durable Object, from its constructor: every SQL statement's rows, every
 * setAlarm, every alarm and hibernatable WebSocket message, and the R2 bucket it was given.
 */
export function meterObject(
  object: {
    alarm?: (...args: never[]) => unknown;
    webSocketMessage?: (...args: never[]) => unknown;
  },
  ctx: DurableObjectState,
  env: { EVENT_LOG?: R2Bucket },
  className: string,
): void {
  const units = unitsOf(className);
  units.starts++;
  const sql = ctx.storage.sql;
  if (!metered.has(sql)) {
    metered.add(sql);
    const exec = sql.exec.bind(sql);
    // Rows are known once the cursor has been consumed; callers consume synchronously (toArray,
    // one, for..of), so the sum is taken in the next microtask.
    sql.exec = ((query: string, ...bindings: unknown[]) => {
      const cursor = exec(query, ...bindings);
      queueMicrotask(() => {
        units.rowsWritten += cursor.rowsWritten;
        units.rowsRead += cursor.rowsRead;
        if (cursor.rowsWritten > 0) {
          const key = `${className}: ${query.replace(/\s+/g, " ").trim().slice(0, 48)}`;
          const counted = statements.get(key) ?? { execs: 0, rowsWritten: 0 };
          counted.execs++;
          counted.rowsWritten += cursor.rowsWritten;
          statements.set(key, counted);
        }
      });
      return cursor;
    }) as typeof sql.exec;
  }
  const storage = ctx.storage;
  if (!metered.has(storage)) {
    metered.add(storage);
    const setAlarm = storage.setAlarm.bind(storage);
    storage.setAlarm = (at, options) => {
      units.alarmsSet++;
      return setAlarm(at, options);
    };
  }
  meterHandlers(object, className, units);
  meterEnvBucket(env);
}

/**
 * Wraps `env.EVENT_LOG` in the meter once (Durable Objects from meterObject; the Worker, which
 * serves segment downloads, per request: its env is not an object's).
 */
export function meterEnvBucket(env: { EVENT_LOG?: R2Bucket }): void {
  if (env.EVENT_LOG && !metered.has(env.EVENT_LOG)) {
    env.EVENT_LOG = meterBucket(env.EVENT_LOG);
    metered.add(env.EVENT_LOG);
  }
}

/** The bucket, counting class A and B operations and the bytes put. */
export function meterBucket(bucket: R2Bucket): R2Bucket {
  return new Proxy(bucket, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (property === "get" || property === "head") r2.classB++;
        // deletes are free in R2 (Class A lists put, list and multipart operations)
        else if (
          property === "put" ||
          property === "list" ||
          property === "createMultipartUpload"
        ) {
          r2.classA++;
          if (property === "put") r2.bytesPut += byteLength(args[1]);
        }
        return value.apply(target, args);
      };
    },
  });
}

function byteLength(body: unknown): number {
  if (body instanceof ArrayBuffer) return body.byteLength;
  if (ArrayBuffer.isView(body)) return body.byteLength;
  if (typeof body === "string") return new TextEncoder().encode(body).byteLength;
  return 0;
}
