package dev.mdm.agent.core.policy;

import java.io.IOException;
import java.util.Map;

import org.json.JSONObject;

import dev.mdm.agent.core.EventSink;
import dev.mdm.agent.core.envelope.Keyring;
import dev.mdm.agent.core.exec.CommandRouter;
import dev.mdm.agent.core.net.ApiException;
import dev.mdm.agent.core.net.DeviceApi;
import dev.mdm.agent.core.store.PolicyStore;
import dev.mdm.agent.core.util.Json;

/**
 * The desired-state channel of PROTOCOL.md v1.1, driven by the agent loop on its own thread: fetch
 * the policy when the heartbeat answer's policy_version differs from the applied one, at every
 * start and on a push sync; verify it like an envelope; keep it; apply it (again at every start,
 * and at each heartbeat while an item is pending); report per-item status until the server has it.
 *
 * <p>The stored record: {"document": text, "version": n, "last_values": {item: value},
 * "status": {"version", "items"}, "status_posted": bool}. last_values keeps, per item, the value
 * last applied, so an item the next policy leaves out stays as it is, and one it changes can
 * undo what the old value added (a Wi-Fi network, a restriction, a hidden app).
 */
public final class PolicySync {
    /**
     * Where the items are applied: on the agent's command thread when it is free (a required
     * app's install must not hold back the heartbeats), never beside a running command. False:
     * busy now, asked again at the next step.
     */
    public interface Applier {
        boolean tryRun(Runnable task);
    }

    /** What a bad policy answer does to the agent: counted in bad_envelopes, a heartbeat asked for. */
    public interface BadCounter {
        void countBadAndRefreshKeys();
    }

    private final DeviceApi api;
    private final Keyring keyring;
    private final PolicyStore store;
    private final PolicyApplier applier;
    private final CommandRouter router;
    private final EventSink events;
    private final BadCounter bad;

    private boolean fetchRequested;
    private boolean reapplyRequested;
    /** A bad answer waits for the heartbeat that refreshes keys, then is fetched and verified once more. */
    private boolean retryAfterHeartbeat;
    private boolean retrying;
    /** The items are being applied off the loop; the record's status is written when that ends. */
    private boolean applying;

    public PolicySync(DeviceApi api, Keyring keyring, PolicyStore store, PolicyActions actions, CommandRouter router,
            EventSink events, BadCounter bad) {
        this.api = api;
        this.keyring = keyring;
        this.store = store;
        this.applier = new PolicyApplier(actions, router);
        this.router = router;
        this.events = events;
        this.bad = bad;
    }

    /**
     * At start, before any command runs: the stored policy's shell allowlist is the agent's again
     * (a shell command must never meet the built-in list of a device whose policy narrowed it).
     * The full re-apply and a fetch follow in the first step after the heartbeat.
     */
    public synchronized void start() {
        JSONObject record = store.load();
        PolicyDocument doc = record == null ? null : PolicyDocument.parse(Json.string(record, "document"));
        JSONObject values = record == null ? null : record.optJSONObject("last_values");
        if (values != null && values.has("shell_allowlist")) {
            try {
                router.setAllowlist(PolicyApplier.allowlist(values.opt("shell_allowlist")));
            } catch (IllegalArgumentException e) {
                events.emit("policy_error", Json.obj("op", "restore_allowlist", "message", e.getMessage()));
            }
        }
        fetchRequested = true;
        reapplyRequested = doc != null;
    }

    /** The version last applied (0: none), sent as the heartbeat's policy_version. */
    public synchronized long appliedVersion() {
        JSONObject record = store.load();
        return record == null ? 0 : Json.integer(record, "version", 0);
    }

    public synchronized void requestFetch() {
        fetchRequested = true;
    }

    /** After each heartbeat: its answer's policy_version (null from a v1 server). */
    public synchronized void onHeartbeat(Long serverVersion) {
        if (retryAfterHeartbeat) {
            retryAfterHeartbeat = false;
            retrying = true;
            fetchRequested = true;
        }
        if (serverVersion != null && serverVersion != appliedVersion()) {
            fetchRequested = true;
        }
        JSONObject record = store.load();
        if (record != null && hasPending(record.optJSONObject("status"))) {
            reapplyRequested = true;
        }
    }

    public synchronized boolean isDue() {
        if (fetchRequested || (reapplyRequested && !applying)) {
            return true;
        }
        JSONObject record = store.load();
        return record != null && record.has("status") && !Json.bool(record, "status_posted", true);
    }

    /** Does what is due; an IOException or a retryable ApiException leaves it due for the next step. */
    public synchronized void run(String deviceId, Applier offLoop) throws IOException, ApiException {
        if (fetchRequested) {
            fetch(deviceId);
        }
        if (reapplyRequested && !applying) {
            reapplyRequested = false;
            applying = true;
            if (!offLoop.tryRun(this::applyStored)) {
                applying = false;
                reapplyRequested = true;
            }
        }
        postStatus();
    }

    /** Inline: the Applier that runs the items on the caller's thread (tests, simple hosts). */
    public static final Applier INLINE = task -> {
        task.run();
        return true;
    };

    private void fetch(String deviceId) throws IOException, ApiException {
        String answer;
        try {
            answer = api.fetchPolicy();
        } catch (ApiException e) {
            if (e.isRetryable() || e.isTokenInvalid()) {
                throw e;
            }
            // A v1 server (404) or a refusal that retrying cannot fix: wait for the next trigger.
            fetchRequested = false;
            events.emit("policy_unavailable", Json.obj("http_status", e.status, "code", e.code, "message", e.detail));
            return;
        }
        fetchRequested = false;
        boolean wasRetry = retrying;
        retrying = false;
        PolicyVerifier.Result v = PolicyVerifier.verify(answer, keyring, deviceId);
        if (v.isBad()) {
            bad.countBadAndRefreshKeys();
            retryAfterHeartbeat = !wasRetry;
            events.emit("policy_bad", Json.obj("reason", v.name(), "kid", v.kid, "retry", wasRetry,
                    "action", wasRetry ? "dropped" : "verify_after_heartbeat"));
            return;
        }
        PolicyDocument doc = v.document;
        if (v.outcome != dev.mdm.agent.core.envelope.Verification.Outcome.VALID) {
            // Rule 2: signed, but for another device. Never applied; reported against its version.
            JSONObject items = new JSONObject();
            for (java.util.Iterator<String> it = doc.items.keys(); it.hasNext(); ) {
                Json.put(items, it.next(), ItemStatus.failed("wrong_device: the policy names another device").toJson());
            }
            events.emit("policy_rejected", Json.obj("version", doc.version, "reason", "wrong_device", "kid", v.kid));
            try {
                post(Json.obj("version", doc.version, "items", items));
            } catch (IOException | ApiException e) {
                fetchRequested = true; // fetched, judged and reported again on the next step
                throw e;
            }
            return;
        }
        JSONObject record = store.load();
        boolean changed = record == null || !doc.text.equals(Json.string(record, "document"));
        events.emit("policy_fetched", Json.obj("version", doc.version, "kid", v.kid, "changed", changed,
                "items", doc.items.length()));
        if (!changed) {
            return; // applied already (and applied again at a start: reapplyRequested)
        }
        if (record == null) {
            record = new JSONObject();
        }
        Json.put(record, "document", doc.text);
        Json.put(record, "version", doc.version);
        store.save(record);
        reapplyRequested = true;
    }

    /**
     * Runs without this object's lock (on the command thread): the loop keeps heartbeating and
     * may store a newer document meanwhile; the result is merged into the record as it is then,
     * and that newer document is applied next (fetch asked for it).
     */
    private void applyStored() {
        JSONObject record;
        synchronized (this) {
            record = store.load();
        }
        PolicyDocument doc = record == null ? null : PolicyDocument.parse(Json.string(record, "document"));
        if (doc == null) {
            synchronized (this) {
                applying = false;
            }
            return;
        }
        JSONObject values = record.optJSONObject("last_values");
        if (values == null) {
            values = new JSONObject();
        }
        Map<String, ItemStatus> statuses = applier.apply(doc.items, values);
        JSONObject items = new JSONObject();
        JSONObject states = new JSONObject();
        for (Map.Entry<String, ItemStatus> e : statuses.entrySet()) {
            Json.put(items, e.getKey(), e.getValue().toJson());
            Json.put(states, e.getKey(), e.getValue().state);
            if (!ItemStatus.UNSUPPORTED.equals(e.getValue().state)) {
                Json.put(values, e.getKey(), doc.items.opt(e.getKey()));
            }
        }
        JSONObject status = Json.obj("version", doc.version, "items", items);
        boolean changed;
        synchronized (this) {
            record = store.load();
            JSONObject before = record.optJSONObject("status");
            changed = before == null || !same(before, status);
            Json.put(record, "last_values", values);
            Json.put(record, "status", status);
            if (changed) {
                Json.put(record, "status_posted", false);
            }
            store.save(record);
            applying = false;
        }
        events.emit("policy_applied", Json.obj("version", doc.version, "items", states, "changed", changed));
        for (Map.Entry<String, ItemStatus> e : statuses.entrySet()) {
            if (!e.getValue().isApplied()) {
                events.emit("policy_item", Json.obj("version", doc.version, "item", e.getKey(), "state",
                        e.getValue().state, "reason", e.getValue().reason));
            }
        }
    }

    private static boolean same(JSONObject a, JSONObject b) {
        JSONObject x = a == null ? null : a.optJSONObject("items");
        JSONObject y = b == null ? null : b.optJSONObject("items");
        return x != null && y != null && Json.integer(a, "version", -1) == Json.integer(b, "version", -2) && sameKeys(x, y);
    }

    private static boolean sameKeys(JSONObject a, JSONObject b) {
        if (a.length() != b.length()) {
            return false;
        }
        for (java.util.Iterator<String> it = a.keys(); it.hasNext(); ) {
            String k = it.next();
            ItemStatus x = ItemStatus.fromJson(a.optJSONObject(k));
            ItemStatus y = ItemStatus.fromJson(b.optJSONObject(k));
            if (x == null || !x.equals(y)) {
                return false;
            }
        }
        return true;
    }

    private static boolean hasPending(JSONObject status) {
        JSONObject items = status == null ? null : status.optJSONObject("items");
        if (items == null) {
            return false;
        }
        for (java.util.Iterator<String> it = items.keys(); it.hasNext(); ) {
            ItemStatus s = ItemStatus.fromJson(items.optJSONObject(it.next()));
            if (s != null && s.isPending()) {
                return true;
            }
        }
        return false;
    }

    private void postStatus() throws IOException, ApiException {
        JSONObject record = store.load();
        if (record == null || !record.has("status") || Json.bool(record, "status_posted", true)) {
            return;
        }
        JSONObject status = record.optJSONObject("status");
        if (post(status)) {
            record = store.load();
            if (record != null && same(record.optJSONObject("status"), status)) {
                Json.put(record, "status_posted", true);
                store.save(record);
            }
        }
    }

    /** True once the server has it or will never take it; retryable failures propagate. */
    private boolean post(JSONObject status) throws IOException, ApiException {
        try {
            api.putPolicyStatus(status);
        } catch (ApiException e) {
            if (e.isRetryable() || e.isTokenInvalid()) {
                throw e;
            }
            events.emit("policy_status_dropped", Json.obj("version", Json.integer(status, "version"),
                    "http_status", e.status, "code", e.code, "message", e.detail));
            return true;
        }
        events.emit("policy_status_posted", Json.obj("version", Json.integer(status, "version")));
        return true;
    }
}
