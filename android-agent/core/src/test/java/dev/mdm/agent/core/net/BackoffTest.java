package dev.mdm.agent.core.net;

import static org.hamcrest.MatcherAssert.assertThat;
import static org.hamcrest.Matchers.greaterThan;
import static org.hamcrest.Matchers.greaterThanOrEqualTo;
import static org.hamcrest.Matchers.lessThanOrEqualTo;
import static org.junit.Assert.assertEquals;

import java.util.HashSet;
import java.util.Random;
import java.util.Set;

import org.junit.Test;

public class BackoffTest {
    @Test
    public void delays_are_full_jitter_within_a_doubling_window_up_to_the_cap() {
        Backoff b = new Backoff(1_000, 60_000, new Random(42));
        long[] windows = {1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000};
        for (long w : windows) {
            long d = b.nextDelayMs(-1);
            assertThat(d, greaterThanOrEqualTo(0L));
            assertThat(d, lessThanOrEqualTo(w));
        }
    }

    @Test
    public void full_jitter_spreads_a_fleet() {
        Set<Long> seen = new HashSet<>();
        Random r = new Random(1);
        for (int i = 0; i < 50; i++) {
            Backoff b = new Backoff(1_000, 60_000, r);
            for (int k = 0; k < 5; k++) {
                b.nextDelayMs(-1);
            }
            seen.add(b.nextDelayMs(-1) / 1000);
        }
        assertThat(seen.size(), greaterThan(10));
    }

    @Test
    public void retry_after_is_a_floor_with_a_bounded_jitter_on_top() {
        Random r = new Random(7);
        for (int i = 0; i < 200; i++) {
            Backoff b = new Backoff(1_000, 60_000, r);
            long d = b.nextDelayMs(30);
            assertThat(d, greaterThanOrEqualTo(30_000L));
            assertThat(d, lessThanOrEqualTo(31_000L));
        }
        Backoff b = new Backoff(1_000, 60_000, r);
        for (int i = 0; i < 10; i++) {
            b.nextDelayMs(-1);
        }
        long d = b.nextDelayMs(10);
        assertThat(d, greaterThanOrEqualTo(10_000L));
        assertThat(d, lessThanOrEqualTo(15_000L));
    }

    @Test
    public void reset_starts_over_from_the_base_window() {
        Backoff b = new Backoff(1_000, 60_000, new Random(3));
        for (int i = 0; i < 10; i++) {
            b.nextDelayMs(-1);
        }
        assertEquals(10, b.failures());
        b.reset();
        assertThat(b.nextDelayMs(-1), lessThanOrEqualTo(1_000L));
    }
}
