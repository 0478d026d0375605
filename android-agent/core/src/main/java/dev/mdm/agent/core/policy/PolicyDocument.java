package dev.mdm.agent.core.policy;

import org.json.JSONException;
import org.json.JSONObject;

import dev.mdm.agent.core.util.Json;

/** The signed policy text of GET /api/v1/device/policy, parsed: {device_id, version, issued_at, items}. */
public final class PolicyDocument {
    public final String deviceId;
    public final long version;
    public final long issuedAt;
    public final JSONObject items;
    /** The JSON text exactly as signed; what the store keeps. */
    public final String text;

    private PolicyDocument(String deviceId, long version, long issuedAt, JSONObject items, String text) {
        this.deviceId = deviceId;
        this.version = version;
        this.issuedAt = issuedAt;
        this.items = items;
        this.text = text;
    }

    /** Null when the text is not a policy document (no device_id, no integral version, items not an object). */
    public static PolicyDocument parse(String text) {
        JSONObject o;
        try {
            o = Json.parseObject(text);
        } catch (JSONException e) {
            return null;
        }
        String deviceId = Json.string(o, "device_id");
        Long version = Json.integer(o, "version");
        Object items = o.opt("items");
        if (deviceId == null || version == null || version < 0
                || (items != null && items != JSONObject.NULL && !(items instanceof JSONObject))) {
            return null;
        }
        return new PolicyDocument(deviceId, version, Json.integer(o, "issued_at", 0),
                items instanceof JSONObject ? (JSONObject) items : new JSONObject(), text);
    }
}
