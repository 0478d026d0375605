package dev.mdm.agent.core.net;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class RetryAfterTest {
    @Test
    public void it_reads_seconds_and_http_dates() {
        assertEquals(7, HttpDeviceApi.parseRetryAfter("7", 0));
        assertEquals(-1, HttpDeviceApi.parseRetryAfter(null, 0));
        assertEquals(-1, HttpDeviceApi.parseRetryAfter("soon", 0));
        long now = 1_764_086_400_000L; // Tue, 25 Nov 2025 16:00:00 GMT
        assertEquals(90, HttpDeviceApi.parseRetryAfter("Tue, 25 Nov 2025 16:01:30 GMT", now));
        assertEquals(0, HttpDeviceApi.parseRetryAfter("Tue, 25 Nov 2025 15:00:00 GMT", now));
    }
}
