package dev.mdm.agent.core.net;

import java.util.List;

import org.json.JSONObject;

import dev.mdm.agent.core.envelope.CommandKey;
import dev.mdm.agent.core.envelope.Keyring;
import dev.mdm.agent.core.util.Json;

public final class EnrollAnswer {
    public final int status;
    public final String deviceId;
    public final String deviceToken;
    public final long heartbeatIntervalS;
    public final List<CommandKey> commandKeys;
    public final long serverTime;

    public EnrollAnswer(int status, String deviceId, String deviceToken, long heartbeatIntervalS,
            List<CommandKey> commandKeys, long serverTime) {
        this.status = status;
        this.deviceId = deviceId;
        this.deviceToken = deviceToken;
        this.heartbeatIntervalS = heartbeatIntervalS;
        this.commandKeys = commandKeys;
        this.serverTime = serverTime;
    }

    static EnrollAnswer parse(int status, JSONObject o) throws java.io.IOException {
        String id = Json.string(o, "device_id");
        String token = Json.string(o, "device_token");
        Long serverTime = Json.integer(o, "server_time");
        if (id == null || token == null || serverTime == null) {
            throw new java.io.IOException("enroll answer lacks device_id, device_token or server_time");
        }
        return new EnrollAnswer(status, id, token, Json.integer(o, "heartbeat_interval_s", 30),
                Keyring.parse(o.optJSONArray("command_keys")), serverTime);
    }
}
