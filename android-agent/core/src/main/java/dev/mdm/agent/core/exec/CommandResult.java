package dev.mdm.agent.core.exec;

import org.json.JSONObject;

import dev.mdm.agent.core.util.Json;

/** The body of POST .../result: a device status with exit_code, output, error or reason. */
public final class CommandResult {
    public static final String SUCCEEDED = "succeeded";
    public static final String FAILED = "failed";
    public static final String REJECTED = "rejected";
    /** The server truncates past 64 KiB; the agent does too so a chatty command cannot bloat the outbox. */
    public static final int MAX_OUTPUT_CHARS = 64 * 1024;

    public final String status;
    public final Integer exitCode;
    public final String output;
    public final String error;
    public final String reason;

    private CommandResult(String status, Integer exitCode, String output, String error, String reason) {
        this.status = status;
        this.exitCode = exitCode;
        this.output = output == null || output.length() <= MAX_OUTPUT_CHARS ? output : output.substring(0, MAX_OUTPUT_CHARS);
        this.error = error;
        this.reason = reason;
    }

    public static CommandResult succeeded() {
        return new CommandResult(SUCCEEDED, 0, null, null, null);
    }

    public static CommandResult succeeded(Integer exitCode, String output) {
        return new CommandResult(SUCCEEDED, exitCode, output, null, null);
    }

    public static CommandResult failed(String error) {
        return new CommandResult(FAILED, null, null, error, null);
    }

    public static CommandResult failed(Integer exitCode, String output, String error) {
        return new CommandResult(FAILED, exitCode, output, error, null);
    }

    public static CommandResult rejected(String reason, String error) {
        return new CommandResult(REJECTED, null, null, error, reason);
    }

    public boolean isFinal() {
        return SUCCEEDED.equals(status) || FAILED.equals(status) || REJECTED.equals(status);
    }

    public JSONObject toJson() {
        JSONObject o = Json.obj("status", status);
        if (exitCode != null) {
            Json.put(o, "exit_code", exitCode);
        }
        if (output != null) {
            Json.put(o, "output", output);
        }
        if (error != null) {
            Json.put(o, "error", error);
        }
        if (reason != null) {
            Json.put(o, "reason", reason);
        }
        return o;
    }

    @Override
    public String toString() {
        return toJson().toString();
    }
}
