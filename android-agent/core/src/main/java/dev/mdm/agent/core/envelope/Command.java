package dev.mdm.agent.core.envelope;

import org.json.JSONException;
import org.json.JSONObject;

import dev.mdm.agent.core.util.Json;

/** The signed payload of an envelope, parsed only after its signature verified. */
public final class Command {
    public final String id;
    public final String deviceId;
    public final long seq;
    public final String type;
    public final JSONObject params;
    public final long issuedAt;
    public final long expiresAt;

    public Command(String id, String deviceId, long seq, String type, JSONObject params, long issuedAt, long expiresAt) {
        this.id = id;
        this.deviceId = deviceId;
        this.seq = seq;
        this.type = type;
        this.params = params == null ? new JSONObject() : params;
        this.issuedAt = issuedAt;
        this.expiresAt = expiresAt;
    }

    /** Returns null when a required field is missing or of the wrong JSON type. */
    public static Command parse(String payload) {
        JSONObject o;
        try {
            o = Json.parseObject(payload);
        } catch (JSONException e) {
            return null;
        }
        String id = Json.string(o, "id");
        String deviceId = Json.string(o, "device_id");
        String type = Json.string(o, "type");
        Long seq = Json.integer(o, "seq");
        Long issued = Json.integer(o, "issued_at");
        Long expires = Json.integer(o, "expires_at");
        Object params = o.opt("params");
        if (id == null || id.isEmpty() || deviceId == null || type == null || seq == null || issued == null
                || expires == null || (params != null && params != JSONObject.NULL && !(params instanceof JSONObject))) {
            return null;
        }
        return new Command(id, deviceId, seq, type, params instanceof JSONObject ? (JSONObject) params : null,
                issued, expires);
    }

    @Override
    public String toString() {
        return "Command(" + id + " seq=" + seq + " " + type + ")"; // never params: they may hold secrets
    }
}
