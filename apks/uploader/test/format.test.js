import assert from "node:assert/strict";
import { test } from "node:test";

import { formatBytes, formatDuration, formatSpeed } from "../src/format.js";

test("sizes read as a file manager shows them", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1536), "1.5 KB");
  assert.equal(formatBytes(5 * 1024 * 1024), "5.0 MB");
  assert.equal(formatBytes(150 * 1024 * 1024), "150 MB");
  assert.equal(formatBytes(-1), "");
  assert.equal(formatBytes(Number.NaN), "");
});

test("speeds are sizes per second, and nothing when unknown", () => {
  assert.equal(formatSpeed(2048), "2.0 KB/s");
  assert.equal(formatSpeed(0), "");
  assert.equal(formatSpeed(null), "");
});

test("durations round up to whole seconds and drop zero parts", () => {
  assert.equal(formatDuration(0.2), "1 s");
  assert.equal(formatDuration(59), "59 s");
  assert.equal(formatDuration(60), "1 min");
  assert.equal(formatDuration(75), "1 min 15 s");
  assert.equal(formatDuration(3600), "1 h");
  assert.equal(formatDuration(3720), "1 h 2 min");
  assert.equal(formatDuration(Number.POSITIVE_INFINITY), "");
});
