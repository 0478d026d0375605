package dev.mdm.agent.core.policy;

import org.json.JSONObject;

import dev.mdm.agent.core.util.Json;

/** One policy item's outcome as PUT /api/v1/device/policy/status carries it (PROTOCOL.md v1.1). */
public final class ItemStatus {
    public static final String APPLIED = "applied";
    public static final String FAILED = "failed";
    public static final String UNSUPPORTED = "unsupported";
    /** Waiting for the user, a reboot or a download that will be retried. */
    public static final String PENDING = "pending";
    /** The server caps text at 256 code points outside error and output fields. */
    private static final int MAX_REASON = 256;

    public final String state;
    public final String reason;

    private ItemStatus(String state, String reason) {
        this.state = state;
        this.reason = reason == null || reason.length() <= MAX_REASON ? reason : reason.substring(0, MAX_REASON - 1) + "…";
    }

    public static ItemStatus applied() {
        return new ItemStatus(APPLIED, null);
    }

    public static ItemStatus failed(String reason) {
        return new ItemStatus(FAILED, reason);
    }

    public static ItemStatus unsupported(String reason) {
        return new ItemStatus(UNSUPPORTED, reason);
    }

    public static ItemStatus pending(String reason) {
        return new ItemStatus(PENDING, reason);
    }

    public boolean isApplied() {
        return APPLIED.equals(state);
    }

    public boolean isPending() {
        return PENDING.equals(state);
    }

    public JSONObject toJson() {
        JSONObject o = Json.obj("state", state);
        if (reason != null) {
            Json.put(o, "reason", reason);
        }
        return o;
    }

    public static ItemStatus fromJson(JSONObject o) {
        String state = Json.string(o, "state");
        return state == null ? null : new ItemStatus(state, Json.string(o, "reason"));
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof ItemStatus && toJson().toString().equals(((ItemStatus) other).toJson().toString());
    }

    @Override
    public int hashCode() {
        return toJson().toString().hashCode();
    }

    @Override
    public String toString() {
        return toJson().toString();
    }
}
