package dev.mdm.agent.core;

import java.io.IOException;

import org.json.JSONObject;

import dev.mdm.agent.core.net.ApiException;
import dev.mdm.agent.core.net.EnrollAnswer;
import dev.mdm.agent.core.store.CommandRecord;
import dev.mdm.agent.core.util.Json;

/**
 * Enrollment and what the agent does with answers only an admin can change: POST /api/v1/enroll
 * (a first enrollment, a re-key with the current token, a re-enrollment waiting for an admin's
 * approval), re-enrollment on token_invalid at most once an hour, and the long waits after a
 * permanent refusal. Part of the {@link Agent}, whose state it changes under the agent's lock.
 */
final class Enrollment {
    private final Agent agent;

    Enrollment(Agent agent) {
        this.agent = agent;
    }

    /**
     * POST /api/v1/enroll. A known device is let in by its current token (sent whenever the agent
     * holds one: a re-key), else by an admin's approval of the request the server opened for it
     * (PROTOCOL.md v1.1): a 409 reenroll_needs_approval names that request, which is stored and
     * carried by every repeat, on the backoff, until one succeeds; a later 409 may name a new one.
     */
    void enroll(boolean reenroll) throws IOException, ApiException {
        agent.op = "enroll";
        JSONObject body = Json.parseObjectOrNull(agent.config.deviceInfo.toString());
        Json.put(body, "hardware_id", agent.state.hardwareId);
        Json.put(body, "agent_version", agent.config.agentVersion);
        if (agent.state.fcmToken != null) {
            Json.put(body, "fcm_token", agent.state.fcmToken);
        }
        String request = agent.state.reenrollRequest;
        if (request != null) {
            Json.put(body, "reenroll_request", request);
        }
        EnrollAnswer a;
        try {
            a = agent.api.enroll(agent.config.enrollKey, body, agent.state.deviceToken);
        } catch (ApiException e) {
            if (e.isReenrollNeedsApproval()) {
                // The same id while it is pending; a new one once the old is spent (denied, used,
                // expired, unknown). Kept across restarts: it is the one the admin approves.
                boolean isNew = e.reenrollRequest != null && !e.reenrollRequest.equals(request);
                if (isNew) {
                    agent.state.reenrollRequest = e.reenrollRequest;
                    agent.stores.state.save(agent.state);
                }
                agent.events.emit("reenroll_pending", Json.obj("reenroll_request", agent.state.reenrollRequest, "new", isNew,
                        "device_id", agent.state.deviceId));
            }
            throw e;
        }
        agent.state.reenrollRequest = null;
        boolean sameDevice = a.deviceId.equals(agent.state.deviceId);
        agent.state.deviceId = a.deviceId;
        agent.state.deviceToken = a.deviceToken;
        agent.state.heartbeatIntervalS = Agent.clampInterval(a.heartbeatIntervalS);
        agent.state.lastServerTime = a.serverTime;
        if (!sameDevice) {
            agent.state.lastSeq = -1;
        }
        if (reenroll) {
            agent.state.lastReenrollAtS = a.serverTime;
            agent.lastReenrollElapsedMs = agent.clock.elapsedMs();
        }
        agent.keyring.replaceAll(a.commandKeys);
        agent.state.keys = agent.keyring.keys();
        agent.stores.state.save(agent.state);
        agent.api.setDeviceToken(a.deviceToken);
        agent.serverClock.update(a.serverTime);
        agent.events.emit("enrolled", Json.obj("device_id", a.deviceId, "status", a.status, "reenrolled", reenroll,
                "heartbeat_interval_s", agent.state.heartbeatIntervalS, "kids", agent.keyring.kids(), "reenroll_request", request));
        if (reenroll) {
            // The server cancelled every non-final delivery (reason reenrolled): drop what has not started.
            for (CommandRecord r : agent.stores.commands.all()) {
                if (r.state == CommandRecord.State.PENDING) {
                    agent.stores.commands.remove(r.id);
                    agent.events.emit("cancelled", Json.obj("id", r.id, "seq", r.seq, "reason", "reenrolled"));
                }
            }
        }
        agent.heartbeatRequested.set(true);
        agent.pullRequested.set(true);
    }

    /**
     * key_invalid, key_expired, device_retired, ...: only an admin can fix these, so keep trying,
     * hours apart. A re-enrollment waiting for approval (reenroll_needs_approval) repeats at the
     * approval-poll floor plus the growing, fully jittered backoff: a fleet reset at once does not come back in
     * step, and nothing loops tightly however long the admin takes.
     */
    void refused(ApiException e) {
        String reason = e.code.isEmpty() ? "http_" + e.status : e.code;
        if (e.isReenrollNeedsApproval()) {
            agent.scheduleBackoff(agent.config.refusedRetryMs + agent.backoff.nextDelayMs(e.retryAfterS), reason, e.status, e.retryAfterS,
                    e.detail);
            return;
        }
        agent.events.emit("error", Json.obj("agent.op", agent.op, "http_status", e.status, "code", e.code, "message", e.detail));
        // Hours, doubling to a cap, jittered: a retired device or a revoked key fleet-wide must
        // not knock every 30 s, and nothing but an admin changes the answer.
        agent.refusals++;
        long base = agent.config.permanentRefusalMs << Math.min(agent.refusals - 1, 8);
        long delay = (long) (Math.min(agent.config.permanentRefusalCapMs, base) * (0.75 + 0.5 * agent.random.nextDouble()));
        agent.permanentRefusal = true;
        agent.scheduleBackoff(Math.max(delay, agent.backoff.nextDelayMs(e.retryAfterS)), reason, e.status, e.retryAfterS, e.detail);
    }

    void reenrollOnTokenInvalid(ApiException cause) {
        long now = agent.clock.elapsedMs();
        long minMs = agent.config.reenrollMinIntervalS * 1000;
        boolean recentHere = now - agent.lastReenrollElapsedMs < minMs;
        boolean recentStored = agent.serverClock.isKnown() && agent.state.lastReenrollAtS >= 0
                && agent.serverClock.nowS() - agent.state.lastReenrollAtS < agent.config.reenrollMinIntervalS;
        if (recentHere || recentStored) {
            long waitMs = recentHere ? agent.lastReenrollElapsedMs + minMs - now
                    : (agent.state.lastReenrollAtS + agent.config.reenrollMinIntervalS - agent.serverClock.nowS()) * 1000;
            agent.events.emit("error", Json.obj("agent.op", agent.op, "http_status", cause.status, "code", cause.code,
                    "message", "token refused; re-enrollment is allowed once an hour"));
            agent.scheduleBackoff(Math.max(waitMs, agent.config.backoffBaseMs), cause.code, cause.status, -1, cause.detail);
            return;
        }
        String failedOp = agent.op;
        try {
            agent.events.emit("reenrolling", Json.obj("agent.op", failedOp, "device_id", agent.state.deviceId));
            agent.lastReenrollElapsedMs = now; // counts even if it fails: at most one attempt an hour
            enroll(true);
        } catch (IOException e) {
            agent.backOff(-1, "network", 0, e.toString());
        } catch (ApiException e) {
            if (e.isRetryable()) {
                agent.lastReenrollElapsedMs = Long.MIN_VALUE / 2; // never reached the decision: try again soon
                agent.backOff(e.retryAfterS, e.code.isEmpty() ? "http_" + e.status : e.code, e.status, e.detail);
            } else {
                // Waiting for an admin (reenroll_needs_approval) repeats on the backoff from the
                // next step on, not once an hour: it is this one re-enrollment, still going.
                refused(e);
            }
        }
    }
}
