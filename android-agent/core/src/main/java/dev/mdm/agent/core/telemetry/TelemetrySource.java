package dev.mdm.agent.core.telemetry;

import org.json.JSONObject;

/**
 * The heartbeat's telemetry fields under their PROTOCOL.md names (battery_pct, charging,
 * mem_avail_mb, network_type, wifi_ssid, foreground_app, uptime_s, ...). A field the source
 * cannot read is left out, never guessed.
 */
public interface TelemetrySource {
    JSONObject read();
}
