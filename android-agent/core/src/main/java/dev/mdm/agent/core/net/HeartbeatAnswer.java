package dev.mdm.agent.core.net;

import java.util.ArrayList;
import java.util.List;

import org.json.JSONArray;
import org.json.JSONObject;

import dev.mdm.agent.core.envelope.CommandKey;
import dev.mdm.agent.core.envelope.Keyring;
import dev.mdm.agent.core.util.Json;

public final class HeartbeatAnswer {
    public final long serverTime;
    public final long heartbeatIntervalS;
    /** Envelope JSON texts, lowest seq first. */
    public final List<String> commands;
    public final boolean moreCommands;
    public final List<String> cancelled;
    /** Null when the answer has no command_keys (the device's kids are current). */
    public final List<CommandKey> commandKeys;
    public final boolean inventoryRequested;
    public final List<String> ignoredFields;
    /** v1.1: the device's current policy version (0: none); null from a server without the policy channel. */
    public Long policyVersion;

    public HeartbeatAnswer(long serverTime, long heartbeatIntervalS, List<String> commands, boolean moreCommands,
            List<String> cancelled, List<CommandKey> commandKeys, boolean inventoryRequested, List<String> ignoredFields) {
        this.serverTime = serverTime;
        this.heartbeatIntervalS = heartbeatIntervalS;
        this.commands = commands;
        this.moreCommands = moreCommands;
        this.cancelled = cancelled;
        this.commandKeys = commandKeys;
        this.inventoryRequested = inventoryRequested;
        this.ignoredFields = ignoredFields;
    }

    static HeartbeatAnswer parse(JSONObject o) throws java.io.IOException {
        Long serverTime = Json.integer(o, "server_time");
        if (serverTime == null) {
            throw new java.io.IOException("heartbeat answer lacks server_time");
        }
        JSONArray keys = o.optJSONArray("command_keys");
        List<String> cancelled = Json.strings(o, "cancelled");
        List<String> ignored = Json.strings(o, "ignored_fields");
        HeartbeatAnswer a = new HeartbeatAnswer(serverTime, Json.integer(o, "heartbeat_interval_s", 30),
                envelopes(o.optJSONArray("commands")), Json.bool(o, "more_commands", false),
                cancelled == null ? new ArrayList<>() : cancelled, keys == null ? null : Keyring.parse(keys),
                Json.bool(o, "inventory_requested", false), ignored == null ? new ArrayList<>() : ignored);
        Long policyVersion = Json.integer(o, "policy_version");
        a.policyVersion = policyVersion != null && policyVersion >= 0 ? policyVersion : null;
        return a;
    }

    /** Envelopes are kept as text: the verifier parses each one itself, whatever it holds. */
    static List<String> envelopes(JSONArray array) {
        List<String> out = new ArrayList<>();
        if (array != null) {
            for (int i = 0; i < array.length(); i++) {
                Object item = array.opt(i);
                out.add(item instanceof String ? (String) item : String.valueOf(item));
            }
        }
        return out;
    }
}
