package dev.mdm.agent.core.net;

import java.io.File;
import java.io.IOException;

import org.json.JSONArray;
import org.json.JSONObject;

/**
 * The device endpoints of PROTOCOL.md. Each call is one attempt: IOException for the network,
 * ApiException for an answer that is not 2xx. Retrying with backoff is the agent loop's job.
 */
public interface DeviceApi {
    /**
     * POST /api/v1/enroll with X-Admin-Key. currentToken (nullable) re-keys a known device without an
     * admin (PROTOCOL.md v1.1 rule 1); the body carries {@code reenroll_request} when an admin's
     * approval is awaited (rule 2).
     */
    EnrollAnswer enroll(String enrollKey, JSONObject body, String currentToken) throws IOException, ApiException;

    /** The device token for every later call; sent only to the base URL's own origin. */
    void setDeviceToken(String token);

    HeartbeatAnswer heartbeat(JSONObject body) throws IOException, ApiException;

    void putInventory(JSONArray apps) throws IOException, ApiException;

    CommandsPage pullCommands(int limit) throws IOException, ApiException;

    /** Returns the delivery's status as the server holds it after the report. */
    String postResult(String commandId, JSONObject result) throws IOException, ApiException;

    /**
     * GET /api/v1/device/policy (PROTOCOL.md v1.1): the answer's JSON text, {"policy", "kid", "sig"},
     * unparsed: the verifier trusts nothing in it before the signature.
     */
    String fetchPolicy() throws IOException, ApiException;

    /** PUT /api/v1/device/policy/status with {"version", "items"}. */
    void putPolicyStatus(JSONObject status) throws IOException, ApiException;

    /**
     * Downloads to dest, resuming a previous partial download of the same APK with Range/If-Range,
     * and checks the sha256 (and size when positive) before dest appears.
     */
    File downloadApk(String apkId, File dest, String sha256, long size) throws IOException, ApiException;
}
