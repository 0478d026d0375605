package dev.mdm.agent.core;

import org.json.JSONObject;

/** What the host tells the agent: enrollment material and tuning. */
public final class AgentConfig {
    /** X-Admin-Key for enrollment (from the provisioning extras or the command line). */
    public String enrollKey;
    /** Build.getSerial() on Android; sent as hardware_id. */
    public String hardwareId;
    /** Optional enrollment fields: serial, model, manufacturer, android_version, sdk_int. */
    public JSONObject deviceInfo = new JSONObject();
    public String agentVersion = Version.NAME;
    /** limit for GET /api/v1/device/commands (the server caps it at 100). */
    public int pullLimit = 100;
    public long backoffBaseMs = 1_000;
    public long backoffCapMs = 60_000;
    /** Floor of the wait between repeats of a re-enrollment that waits for an admin's approval. */
    public long refusedRetryMs = 30_000;
    /**
     * First wait after an answer only an admin can change (key_invalid, key_expired, key_exhausted,
     * device_retired, ...); it doubles per refusal up to {@link #permanentRefusalCapMs}, jittered.
     */
    public long permanentRefusalMs = 2 * 3600_000L;
    public long permanentRefusalCapMs = 12 * 3600_000L;
    /**
     * Where commands run. A host with a loop thread passes a single-thread executor so a long
     * command (an install) runs beside the heartbeats; the default runs it inline, in the step.
     */
    public java.util.concurrent.Executor commandExecutor = Runnable::run;
    /**
     * POST received and running before the final result (PROTOCOL.md delivery states): the
     * hosts turn it on; off, only final results are posted (fewer requests in unit tests).
     */
    public boolean reportProgress;
    /** PROTOCOL.md: re-enroll on token_invalid at most once an hour. */
    public long reenrollMinIntervalS = 3600;
    /** How often a command interrupted by transient failures (an APK download) is tried. */
    public int maxCommandAttempts = 5;
}
