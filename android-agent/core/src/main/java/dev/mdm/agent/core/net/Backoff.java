package dev.mdm.agent.core.net;

import java.util.Random;

/**
 * Exponential backoff with full jitter: the n-th consecutive failure waits a uniform random time
 * in [0, min(cap, base * 2^n)]. A Retry-After is a floor, with the jitter window added on top so
 * a fleet told "30 s" does not come back in the same second.
 */
public final class Backoff {
    private final long baseMs;
    private final long capMs;
    private final Random random;
    private int failures;

    public Backoff(long baseMs, long capMs, Random random) {
        if (baseMs <= 0 || capMs < baseMs) {
            throw new IllegalArgumentException("need 0 < base <= cap");
        }
        this.baseMs = baseMs;
        this.capMs = capMs;
        this.random = random;
    }

    /** The delay before the next attempt after one more failure; retryAfterS < 0 means none given. */
    public synchronized long nextDelayMs(long retryAfterS) {
        long window = window(failures);
        failures = Math.min(failures + 1, 62);
        long jitter = (long) (random.nextDouble() * (window + 1));
        if (retryAfterS >= 0) {
            long floor = retryAfterS * 1000L;
            // The window on top of Retry-After stays small: the server already chose the wait.
            return floor + Math.min(jitter, Math.max(baseMs, floor / 2));
        }
        return jitter;
    }

    public synchronized void reset() {
        failures = 0;
    }

    public synchronized int failures() {
        return failures;
    }

    /** The upper bound of the n-th delay (n from 0), for tests and for logging. */
    public long window(int n) {
        long w = baseMs;
        for (int i = 0; i < n && w < capMs; i++) {
            w *= 2;
        }
        return Math.min(w, capMs);
    }
}
