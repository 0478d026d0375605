package dev.mdm.agent.core.store;

import org.json.JSONObject;

import dev.mdm.agent.core.envelope.Command;
import dev.mdm.agent.core.util.Json;

/**
 * One command the device holds: PENDING (verified, waiting its turn), RUNNING (started; found so
 * after a restart it was interrupted) or DONE (a result not yet acknowledged by the server). The
 * envelope and params go with the record, which is deleted once its final result is posted.
 */
public final class CommandRecord {
    public enum State { PENDING, RUNNING, DONE }

    public final String id;
    public final long seq;
    public final String type;
    public final JSONObject params;
    public final long issuedAt;
    public final long expiresAt;
    public String envelope;
    public State state;
    public JSONObject result;
    public int attempts;
    /** Clock.elapsedMs() when it last started running, -1 before: tells a reboot from a restart. */
    public long startedElapsedMs = -1;

    public CommandRecord(String id, long seq, String type, JSONObject params, long issuedAt, long expiresAt,
            String envelope, State state, JSONObject result, int attempts) {
        this.id = id;
        this.seq = seq;
        this.type = type;
        this.params = params == null ? new JSONObject() : params;
        this.issuedAt = issuedAt;
        this.expiresAt = expiresAt;
        this.envelope = envelope;
        this.state = state;
        this.result = result;
        this.attempts = attempts;
    }

    public static CommandRecord pending(Command c, String envelope) {
        return new CommandRecord(c.id, c.seq, c.type, c.params, c.issuedAt, c.expiresAt, envelope, State.PENDING, null, 0);
    }

    public static CommandRecord done(Command c, JSONObject result) {
        return new CommandRecord(c.id, c.seq, c.type, null, c.issuedAt, c.expiresAt, null, State.DONE, result, 0);
    }

    /** A result to post again for a duplicate whose record was already deleted. */
    public static CommandRecord resend(String id, JSONObject result) {
        return new CommandRecord(id, -1, "", null, 0, 0, null, State.DONE, result, 0);
    }

    public Command toCommand(String deviceId) {
        return new Command(id, deviceId, seq, type, params, issuedAt, expiresAt);
    }

    public JSONObject toJson() {
        return Json.obj("id", id, "seq", seq, "type", type, "params", params, "issued_at", issuedAt,
                "expires_at", expiresAt, "envelope", envelope, "state", state.name(), "result", result,
                "attempts", attempts, "started_elapsed_ms", startedElapsedMs);
    }

    public static CommandRecord fromJson(JSONObject o) {
        String id = Json.string(o, "id");
        String state = Json.string(o, "state");
        if (id == null || state == null) {
            return null;
        }
        CommandRecord r = new CommandRecord(id, Json.integer(o, "seq", -1), Json.string(o, "type"), o.optJSONObject("params"),
                Json.integer(o, "issued_at", 0), Json.integer(o, "expires_at", 0), Json.string(o, "envelope"),
                State.valueOf(state), o.optJSONObject("result"), (int) Json.integer(o, "attempts", 0));
        r.startedElapsedMs = Json.integer(o, "started_elapsed_ms", -1);
        return r;
    }
}
