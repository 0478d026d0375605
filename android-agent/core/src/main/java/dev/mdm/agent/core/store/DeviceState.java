package dev.mdm.agent.core.store;

import java.util.ArrayList;
import java.util.List;

import org.json.JSONArray;
import org.json.JSONObject;

import dev.mdm.agent.core.envelope.CommandKey;
import dev.mdm.agent.core.envelope.Keyring;
import dev.mdm.agent.core.util.Json;

/** Everything the agent must remember across restarts besides commands and seen ids. */
public final class DeviceState {
    public String hardwareId;
    public String deviceId;
    public String deviceToken;
    public List<CommandKey> keys = new ArrayList<>();
    /** The last server_time received; informational across restarts (the clock restarts at boot). */
    public long lastServerTime = -1;
    public long heartbeatIntervalS = 30;
    /** The highest seq executed, rejected, cancelled or skipped; -1 before the first command. */
    public long lastSeq = -1;
    /** Envelopes that failed checks since the last heartbeat that carried the count. */
    public long badEnvelopes;
    /** Server time of the last re-enrollment on token_invalid; -1 if none. */
    public long lastReenrollAtS = -1;
    public String fcmToken;
    /**
     * The id of the re-enrollment request an admin must approve (a 409 reenroll_needs_approval,
     * PROTOCOL.md v1.1), repeated in every enroll until one succeeds; null when none is awaited.
     */
    public String reenrollRequest;

    public boolean isEnrolled() {
        return deviceId != null && deviceToken != null;
    }

    public DeviceState copy() {
        return fromJson(toJson());
    }

    public JSONObject toJson() {
        JSONArray k = new JSONArray();
        for (CommandKey key : keys) {
            k.put(key.toJson());
        }
        return Json.obj("hardware_id", hardwareId, "device_id", deviceId, "device_token", deviceToken,
                "command_keys", k, "last_server_time", lastServerTime, "heartbeat_interval_s", heartbeatIntervalS,
                "last_seq", lastSeq, "bad_envelopes", badEnvelopes, "last_reenroll_at", lastReenrollAtS,
                "fcm_token", fcmToken, "reenroll_request", reenrollRequest);
    }

    public static DeviceState fromJson(JSONObject o) {
        DeviceState s = new DeviceState();
        if (o == null) {
            return s;
        }
        s.hardwareId = Json.string(o, "hardware_id");
        s.deviceId = Json.string(o, "device_id");
        s.deviceToken = Json.string(o, "device_token");
        s.keys = Keyring.parse(o.optJSONArray("command_keys"));
        s.lastServerTime = Json.integer(o, "last_server_time", -1);
        s.heartbeatIntervalS = Json.integer(o, "heartbeat_interval_s", 30);
        s.lastSeq = Json.integer(o, "last_seq", -1);
        s.badEnvelopes = Json.integer(o, "bad_envelopes", 0);
        s.lastReenrollAtS = Json.integer(o, "last_reenroll_at", -1);
        s.fcmToken = Json.string(o, "fcm_token");
        s.reenrollRequest = Json.string(o, "reenroll_request");
        return s;
    }
}
