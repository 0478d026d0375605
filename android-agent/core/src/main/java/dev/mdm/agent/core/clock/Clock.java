package dev.mdm.agent.core.clock;

/**
 * The two clocks the agent reads. Injected so tests control both; on Android elapsedMs is
 * SystemClock.elapsedRealtime() (keeps counting in deep sleep), here System.nanoTime().
 */
public interface Clock {
    /** Monotonic milliseconds; only differences mean anything. */
    long elapsedMs();

    /** The device's own wall clock in milliseconds, reported as device_time but never trusted. */
    long wallMs();

    Clock SYSTEM = new Clock() {
        @Override
        public long elapsedMs() {
            return System.nanoTime() / 1_000_000L;
        }

        @Override
        public long wallMs() {
            return System.currentTimeMillis();
        }
    };
}
