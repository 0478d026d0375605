package dev.mdm.agent.core.support;

import dev.mdm.agent.core.clock.Clock;

/** Both clocks under the test's control; the wall clock starts dead (1970), like a kiosk's. */
public final class FakeClock implements Clock {
    private long elapsedMs = 1_000;
    private long wallMs = 0;

    @Override
    public synchronized long elapsedMs() {
        return elapsedMs;
    }

    @Override
    public synchronized long wallMs() {
        return wallMs;
    }

    public synchronized void advanceMs(long ms) {
        elapsedMs += ms;
        wallMs += ms;
    }

    public void advanceS(long s) {
        advanceMs(s * 1000);
    }
}
