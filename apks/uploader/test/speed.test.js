import assert from "node:assert/strict";
import { test } from "node:test";

import { SpeedMeter } from "../src/speed.js";

test("the speed is unknown until the samples span half a second", () => {
  const meter = new SpeedMeter();
  assert.equal(meter.speed(), null);
  meter.add(0, 0);
  meter.add(100, 1000);
  assert.equal(meter.speed(), null);
  assert.equal(meter.secondsLeft(10_000), null);
});

test("speed and time left follow the recent window, not the whole upload", () => {
  const meter = new SpeedMeter(5000);
  meter.add(0, 0);
  meter.add(1000, 1_000_000); // 1 MB/s for the first second
  assert.equal(meter.speed(), 1_000_000);
  for (let t = 2000; t <= 12_000; t += 1000) meter.add(t, 1_000_000 + ((t - 1000) / 1000) * 100_000);
  // The first fast second has left the window: 100 kB/s now.
  assert.equal(Math.round(meter.speed()), 100_000);
  assert.equal(Math.round(meter.secondsLeft(2_100_000 + 100_000)), 1);
});

test("a chunk sent again (offset going back) starts a new run", () => {
  const meter = new SpeedMeter();
  meter.add(0, 0);
  meter.add(1000, 5000);
  meter.add(1100, 4000);
  assert.equal(meter.speed(), null);
  meter.add(2100, 6000);
  assert.equal(meter.speed(), 2000);
});

test("reset forgets the history (after a pause or a resume)", () => {
  const meter = new SpeedMeter();
  meter.add(0, 0);
  meter.add(1000, 1000);
  meter.reset();
  assert.equal(meter.speed(), null);
  meter.add(60_000, 1000);
  meter.add(61_000, 3000);
  assert.equal(meter.speed(), 2000);
});
