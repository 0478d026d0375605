package dev.mdm.agent.core.clock;

/**
 * Server time as the device judges it: the last server_time plus the monotonic time elapsed since
 * that answer. Kiosks boot with dead wall clocks, so the wall clock is never used for expiry.
 * Unknown until the first answer of this process (the monotonic clock restarts at boot).
 */
public final class ServerClock {
    private final Clock clock;
    private long serverTimeS;
    private long elapsedAtMs;
    private boolean known;

    public ServerClock(Clock clock) {
        this.clock = clock;
    }

    public synchronized void update(long serverTimeS) {
        this.serverTimeS = serverTimeS;
        this.elapsedAtMs = clock.elapsedMs();
        this.known = true;
    }

    public synchronized boolean isKnown() {
        return known;
    }

    /** Server now in Unix seconds; throws if no server answer was seen by this process yet. */
    public synchronized long nowS() {
        if (!known) {
            throw new IllegalStateException("server time is not known before the first answer");
        }
        return serverTimeS + Math.floorDiv(clock.elapsedMs() - elapsedAtMs, 1000L);
    }
}
