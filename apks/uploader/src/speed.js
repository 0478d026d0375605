// Upload speed over a sliding window, so "time left" follows the connection as it is now rather
// than the average since the start (which a pause, a retry or a resumed offset would skew).

export const WINDOW_MS = 5000;
const MIN_SPAN_MS = 500;

export class SpeedMeter {
  constructor(windowMs = WINDOW_MS) {
    this.windowMs = windowMs;
    this.samples = [];
  }

  /** Forget the history: after a pause, a retry or a resume the next bytes start a new run. */
  reset() {
    this.samples = [];
  }

  /** Record that `bytes` (the upload's offset, growing) were sent by time `now` (ms). */
  add(now, bytes) {
    const last = this.samples[this.samples.length - 1];
    // A chunk that is sent again (after a failed PATCH) starts lower: the old run means nothing.
    if (last && bytes < last.bytes) this.samples = [];
    this.samples.push({ now, bytes });
    while (this.samples.length > 2 && now - this.samples[1].now >= this.windowMs) this.samples.shift();
  }

  /** Bytes per second, or null until the window spans enough time to say. */
  speed() {
    if (this.samples.length < 2) return null;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const span = last.now - first.now;
    if (span < MIN_SPAN_MS) return null;
    return ((last.bytes - first.bytes) * 1000) / span;
  }

  /** Seconds until `total` at the current speed, or null when the speed is unknown or zero. */
  secondsLeft(total) {
    const speed = this.speed();
    const last = this.samples[this.samples.length - 1];
    if (!speed || !last) return null;
    return Math.max(0, (total - last.bytes) / speed);
  }
}
