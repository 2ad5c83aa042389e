import { describe, expect, it } from "vitest";
import {
  type IntakeState,
  intakeVerdict,
  MAX_OBJECT_QUEUED_BYTES,
  MAX_PENDING_BYTES,
  MAX_QUEUED_BYTES,
  MAX_QUEUED_FRAMES,
  objectHasRoom,
  QUEUED_FRAME_OVERHEAD_BYTES,
  queuedCost,
} from "../../src/ingest/intake";

const empty: IntakeState = {
  hostFrames: 0,
  hostBytes: 0,
  objectBytes: 0,
  objectMaxBytes: MAX_OBJECT_QUEUED_BYTES,
  pendingBytes: 0,
};

describe("intakeVerdict", () => {
  it("takes frames while every queue has room", () => {
    expect(intakeVerdict(1_000, empty)).toEqual({ take: true });
    expect(
      intakeVerdict(1_000, {
        ...empty,
        hostFrames: MAX_QUEUED_FRAMES - 1,
        hostBytes: MAX_QUEUED_BYTES - 1_000,
        objectBytes: MAX_OBJECT_QUEUED_BYTES - 1_000,
        pendingBytes: MAX_PENDING_BYTES,
      }),
    ).toEqual({ take: true });
  });

  it("says which queue is full, the Sequencer's first", () => {
    const full = {
      hostFrames: MAX_QUEUED_FRAMES,
      hostBytes: 10,
      objectBytes: MAX_OBJECT_QUEUED_BYTES,
      objectMaxBytes: MAX_OBJECT_QUEUED_BYTES,
      pendingBytes: MAX_PENDING_BYTES + 1,
    };
    expect(intakeVerdict(1, full)).toEqual({ take: false, full: "sequencer" });
    expect(intakeVerdict(1, { ...full, pendingBytes: 0 })).toEqual({ take: false, full: "host" });
    expect(intakeVerdict(1, { ...full, pendingBytes: 0, hostFrames: 0 })).toEqual({
      take: false,
      full: "object",
    });
  });

  it("stops a host at its own byte limit, and the object at the limit over all hosts", () => {
    expect(intakeVerdict(2_000, { ...empty, hostBytes: MAX_QUEUED_BYTES - 1_000 })).toEqual({
      take: false,
      full: "host",
    });
    // another host's frames count against the object: this host has nothing queued
    expect(
      intakeVerdict(2_000, { ...empty, objectBytes: 999_000, objectMaxBytes: 1_000_000 }),
    ).toEqual({ take: false, full: "object" });
  });

  it("always takes a frame into an empty queue, however large", () => {
    const huge = 5_000_000;
    expect(intakeVerdict(huge, { ...empty, objectMaxBytes: 1_000_000 })).toEqual({ take: true });
    expect(intakeVerdict(MAX_QUEUED_BYTES + 1, empty)).toEqual({ take: true });
    // but not into a host's queue that holds something, nor an object's
    expect(intakeVerdict(MAX_QUEUED_BYTES, { ...empty, hostBytes: 1, objectBytes: 1 })).toEqual({
      take: false,
      full: "host",
    });
    expect(intakeVerdict(huge, { ...empty, objectBytes: 1, objectMaxBytes: 1_000_000 })).toEqual({
      take: false,
      full: "object",
    });
  });
});

describe("objectHasRoom", () => {
  it("is true once half of the object's queue is free", () => {
    expect(objectHasRoom(0, 1_000)).toBe(true);
    expect(objectHasRoom(500, 1_000)).toBe(true);
    expect(objectHasRoom(501, 1_000)).toBe(false);
  });
});

describe("queuedCost", () => {
  it("counts a frame's objects with its bytes, so small frames cannot outgrow the limits", () => {
    expect(queuedCost(1_500)).toBe(1_500 + QUEUED_FRAME_OVERHEAD_BYTES);
    // 40-byte frames (an #identity event can be that small): the object's limit is reached by
    // their cost, not by their bytes alone
    const cost = queuedCost(40);
    const room = MAX_OBJECT_QUEUED_BYTES - cost + 1;
    expect(intakeVerdict(cost, { ...empty, objectBytes: room })).toEqual({
      take: false,
      full: "object",
    });
    expect(intakeVerdict(40, { ...empty, objectBytes: room })).toEqual({ take: true });
  });
});
