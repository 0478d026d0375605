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
    /** Floor of the wait after an answer that retrying soon cannot fix (bad key, retired device). */
    public long refusedRetryMs = 30_000;
    /** PROTOCOL.md: re-enroll on token_invalid at most once an hour. */
    public long reenrollMinIntervalS = 3600;
    /** How often a command interrupted by transient failures (an APK download) is tried. */
    public int maxCommandAttempts = 5;
}
