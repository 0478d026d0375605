package dev.mdm.agent.core;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import org.json.JSONObject;

import dev.mdm.agent.core.clock.Clock;
import dev.mdm.agent.core.clock.ServerClock;
import dev.mdm.agent.core.envelope.Keyring;
import dev.mdm.agent.core.envelope.Verification;
import dev.mdm.agent.core.exec.CommandRouter;
import dev.mdm.agent.core.net.ApiException;
import dev.mdm.agent.core.net.Backoff;
import dev.mdm.agent.core.net.CommandsPage;
import dev.mdm.agent.core.net.DeviceApi;
import dev.mdm.agent.core.net.HeartbeatAnswer;
import dev.mdm.agent.core.policy.PolicyActions;
import dev.mdm.agent.core.policy.PolicySync;
import dev.mdm.agent.core.policy.UnsupportedPolicyActions;
import dev.mdm.agent.core.store.CommandRecord;
import dev.mdm.agent.core.store.DeviceState;
import dev.mdm.agent.core.store.Stores;
import dev.mdm.agent.core.telemetry.AppInfo;
import dev.mdm.agent.core.telemetry.AppsHash;
import dev.mdm.agent.core.telemetry.InventorySource;
import dev.mdm.agent.core.telemetry.TelemetrySource;
import dev.mdm.agent.core.util.Json;

/**
 * The agent loop: enroll, heartbeat, verify envelopes, run commands one at a time in seq order,
 * report results at least once. One thread calls {@link #step()} (or {@link #run()}); push
 * callbacks ({@link #onPush}, {@link #requestPull}, ...) may come from any thread.
 *
 * <p>A step does, in order: enroll if needed; heartbeat when due (always first after start, so
 * nothing runs before the server clock is known); pull when asked; verify envelopes that arrived
 * by push; post held results; run ready commands. A network error or a 429/503 ends the step
 * and backs off with full jitter; everything done so far is already in the stores.
 */
public final class Agent {
    private static final long MAX_INTERVAL_S = 3600;
    private static final long MIN_INTERVAL_S = 5;

    // Fields without "private" are shared with Enrollment, a part of this class split out by
    // concern; it changes them only from step(), under this object's lock.

    final AgentConfig config;
    final DeviceApi api;
    final Stores stores;
    private final CommandRouter router;
    private final TelemetrySource telemetry;
    private final InventorySource inventory;
    final Clock clock;
    final Random random;
    final EventSink events;
    final ServerClock serverClock;
    final Keyring keyring = new Keyring();
    final Backoff backoff;
    private final PolicySync policy;

    private final ConcurrentLinkedQueue<Incoming> inbox = new ConcurrentLinkedQueue<>();
    final AtomicBoolean pullRequested = new AtomicBoolean();
    private final AtomicBoolean policyRequested = new AtomicBoolean();
    final AtomicBoolean heartbeatRequested = new AtomicBoolean();
    private final AtomicBoolean retryNowRequested = new AtomicBoolean();
    private final AtomicReference<String> newFcmToken = new AtomicReference<>();
    private final Object wake = new Object();
    private boolean woken;
    private volatile boolean stopped;

    DeviceState state;
    private boolean started;
    private boolean heartbeatSinceStart;
    private long nextHeartbeatAtMs;
    private long backoffUntilMs = Long.MIN_VALUE;
    private long lastRefreshHeartbeatMs = Long.MIN_VALUE / 2;
    long lastReenrollElapsedMs = Long.MIN_VALUE / 2;
    private long gapPulledForSeq = Long.MIN_VALUE;
    /** Envelopes that failed checks, verified once more after the next heartbeat. */
    private final List<Incoming> reverify = new ArrayList<>();
    String op = "start";
    private final CommandRunner commands;
    private final Enrollment enrollment = new Enrollment(this);
    /** A command asked to be tried later: this step ends on the backoff it set. */
    private boolean commandBackoff;
    /** A refusal only an admin can fix is being waited out: a network return does not cut it short. */
    boolean permanentRefusal;
    int refusals;

    private static final class Incoming {
        final String json;
        final String source;
        final boolean retry;

        Incoming(String json, String source, boolean retry) {
            this.json = json;
            this.source = source;
            this.retry = retry;
        }
    }

    /** For a host without Device Owner powers: every platform policy item is reported unsupported. */
    public Agent(AgentConfig config, DeviceApi api, Stores stores, CommandRouter router, TelemetrySource telemetry,
            InventorySource inventory, Clock clock, Random random, EventSink events) {
        this(config, api, stores, router, new UnsupportedPolicyActions(), telemetry, inventory, clock, random, events);
    }

    public Agent(AgentConfig config, DeviceApi api, Stores stores, CommandRouter router, PolicyActions policyActions,
            TelemetrySource telemetry, InventorySource inventory, Clock clock, Random random, EventSink events) {
        this.config = config;
        this.api = api;
        this.stores = stores;
        this.router = router;
        this.telemetry = telemetry;
        this.inventory = inventory;
        this.clock = clock;
        this.random = random;
        this.events = events;
        this.serverClock = new ServerClock(clock);
        this.backoff = new Backoff(config.backoffBaseMs, config.backoffCapMs, random);
        this.commands = new CommandRunner(config, api, stores, router, clock, serverClock, events, new CommandRunner.Host() {
            @Override
            public String deviceId() {
                return state.deviceId;
            }

            @Override
            public void advanceSeq(long seq) {
                Agent.this.advanceSeq(seq);
            }

            @Override
            public void backOff(long retryAfterS, String reason, String message) {
                Agent.this.backOff(retryAfterS, reason, 0, message);
            }

            @Override
            public void setOp(String name) {
                op = name;
            }

            @Override
            public void wakeUp() {
                Agent.this.wakeUp();
            }
        }, this);
        this.policy = new PolicySync(api, keyring, stores.policy, policyActions, router, events, this::countBadAndRefreshKeys);
    }

    // ---- called from any thread -------------------------------------------------------------

    /** An FCM data message: {"kind": "sync"} pulls, {"kind": "command", "envelope": ...} verifies. */
    public void onPush(Map<String, String> data) {
        String kind = data.get("kind");
        if ("sync".equals(kind)) {
            policyRequested.set(true); // a policy change is pushed as a sync too (PROTOCOL.md v1.1)
            requestPull();
        } else if ("command".equals(kind) && data.get("envelope") != null) {
            addEnvelope(data.get("envelope"), "push");
        } else {
            events.emit("push_ignored", Json.obj("kind", kind));
        }
    }

    /** Feeds one envelope to the verifier; held until the first heartbeat of this start. */
    public void addEnvelope(String envelopeJson, String source) {
        inbox.add(new Incoming(envelopeJson, source, false));
        wakeUp();
    }

    public void requestPull() {
        pullRequested.set(true);
        wakeUp();
    }

    public void requestHeartbeat() {
        heartbeatRequested.set(true);
        wakeUp();
    }

    /** FCM onNewToken: sent in a heartbeat at once. */
    public void onNewFcmToken(String token) {
        newFcmToken.set(token);
        requestHeartbeat();
    }

    /** The network is back (or the device left Doze): end any backoff and try at once. */
    public void retryNow() {
        retryNowRequested.set(true);
        wakeUp();
    }

    public void stop() {
        stopped = true;
        wakeUp();
    }

    public boolean isStopped() {
        return stopped;
    }

    // ---- the loop ---------------------------------------------------------------------------

    /** Runs steps until {@link #stop()}, sleeping between them; a push wakes it early. */
    public void run() {
        start();
        while (!stopped) {
            long delay = step();
            if (delay > 0) {
                awaitWork(delay);
            }
        }
        events.emit("stopped", Json.obj("held_results", countDone(), "pending_commands", countPending()));
    }

    /** Loads the stores; a command found RUNNING was interrupted by the restart. Idempotent. */
    public synchronized void start() {
        if (started) {
            return;
        }
        started = true;
        state = stores.state.load();
        if (config.hardwareId != null) {
            state.hardwareId = config.hardwareId;
        }
        if (state.hardwareId == null) {
            throw new IllegalStateException("no hardware id configured or stored");
        }
        stores.state.save(state);
        keyring.replaceAll(state.keys);
        api.setDeviceToken(state.deviceToken);
        List<JSONObject> reconciled = new ArrayList<>();
        for (CommandRecord r : stores.commands.all()) {
            if (r.state == CommandRecord.State.RUNNING) {
                reconciled.add(commands.reconcile(r));
            }
        }
        pullRequested.set(true); // PROTOCOL.md: pull on every start
        policy.start(); // and fetch the policy, and apply the stored one again
        events.emit("started", Json.obj("hardware_id", state.hardwareId, "device_id", state.deviceId,
                "enrolled", state.isEnrolled(), "pending_commands", countPending(), "held_results", countDone()));
        for (JSONObject fields : reconciled) {
            events.emit("reconciled", fields);
        }
    }

    /**
     * Does what is due now and returns the milliseconds until something else is due
     * (0: call again at once).
     */
    public synchronized long step() {
        start();
        long now = clock.elapsedMs();
        if (retryNowRequested.getAndSet(false) && !permanentRefusal) {
            backoffUntilMs = Long.MIN_VALUE;
        }
        commandBackoff = false;
        if (now < backoffUntilMs) {
            return backoffUntilMs - now;
        }
        try {
            if (!state.isEnrolled()) {
                enrollment.enroll(false);
            } else if (state.reenrollRequest != null) {
                enrollment.enroll(true); // a re-enrollment waiting for an admin: nothing else works meanwhile
            }
            boolean asked = heartbeatRequested.getAndSet(false);
            if (!heartbeatSinceStart || asked || now >= nextHeartbeatAtMs) {
                try {
                    heartbeat();
                } catch (IOException | ApiException e) {
                    heartbeatRequested.compareAndSet(false, asked);
                    throw e;
                }
            }
            if (pullRequested.getAndSet(false)) {
                try {
                    pull();
                } catch (IOException | ApiException e) {
                    pullRequested.set(true);
                    throw e;
                }
            }
            if (policyRequested.getAndSet(false)) {
                policy.requestFetch();
            }
            if (policy.isDue()) {
                op = "policy";
                policy.run(state.deviceId, commands::tryRunExclusive);
            }
            drainInbox();
            commands.flushResults();
            executeReady();
            commandBackoff |= commands.takeBackoffScheduled();
            if (!commandBackoff) {
                backoff.reset();
                permanentRefusal = false;
                refusals = 0;
            }
        } catch (IOException e) {
            backOff(-1, "network", 0, e.toString());
        } catch (ApiException e) {
            onApiError(e);
        }
        return delayUntilDue();
    }

    private long delayUntilDue() {
        long now = clock.elapsedMs();
        if (now < backoffUntilMs) {
            return backoffUntilMs - now;
        }
        if (!state.isEnrolled() || state.reenrollRequest != null || heartbeatRequested.get() || pullRequested.get() || !inbox.isEmpty()
                // Not while the command thread is busy: the policy's apply would wait for it, and
                // the loop would spin; the command's end wakes the loop.
                || (heartbeatSinceStart && !commands.isBusy() && (policyRequested.get() || policy.isDue()))
                || (heartbeatSinceStart && (countDone() > 0 || (countPending() > 0 && !commands.isBusy())))) {
            return 0;
        }
        return Math.max(0, nextHeartbeatAtMs - now);
    }

    // ---- errors -----------------------------------------------------------------------------

    private void onApiError(ApiException e) {
        if (e.isTokenInvalid() && state.isEnrolled()) {
            enrollment.reenrollOnTokenInvalid(e);
            return;
        }
        if (e.isRetryable()) {
            backOff(e.retryAfterS, e.code.isEmpty() ? "http_" + e.status : e.code, e.status, e.detail);
            return;
        }
        enrollment.refused(e);
    }

    // ---- heartbeat --------------------------------------------------------------------------

    private void heartbeat() throws IOException, ApiException {
        op = "heartbeat";
        String token = newFcmToken.getAndSet(null);
        if (token != null) {
            state.fcmToken = token;
            stores.state.save(state);
        }
        JSONObject body = telemetry.read();
        body = body == null ? new JSONObject() : Json.parseObjectOrNull(body.toString());
        List<AppInfo> apps = inventory.apps();
        List<String> kids = keyring.kids();
        long sentBad = state.badEnvelopes;
        Json.put(body, "agent_version", config.agentVersion);
        Json.put(body, "device_time", clock.wallMs() / 1000);
        Json.put(body, "apps_hash", AppsHash.of(apps));
        Json.put(body, "kids", kids);
        Json.put(body, "bad_envelopes", sentBad);
        Json.put(body, "policy_version", policy.appliedVersion());
        if (state.fcmToken != null) {
            Json.put(body, "fcm_token", state.fcmToken);
        }
        HeartbeatAnswer a;
        try {
            a = api.heartbeat(body);
        } catch (IOException | ApiException e) {
            if (token != null) {
                newFcmToken.compareAndSet(null, token);
            }
            throw e;
        }
        serverClock.update(a.serverTime);
        heartbeatSinceStart = true;
        state.lastServerTime = a.serverTime;
        state.heartbeatIntervalS = clampInterval(a.heartbeatIntervalS);
        state.badEnvelopes = Math.max(0, state.badEnvelopes - sentBad);
        boolean keysReplaced = false;
        if (a.commandKeys != null) {
            // Applied before this answer's commands are verified (PROTOCOL.md).
            keysReplaced = keyring.replaceAll(a.commandKeys);
            state.keys = keyring.keys();
        }
        stores.state.save(state);
        long intervalMs = state.heartbeatIntervalS * 1000;
        nextHeartbeatAtMs = clock.elapsedMs() + (long) (intervalMs * (0.9 + 0.2 * random.nextDouble()));
        events.emit("heartbeat", Json.obj("status", 200, "bad_envelopes", sentBad, "kids", kids,
                "server_time", a.serverTime, "heartbeat_interval_s", state.heartbeatIntervalS,
                "commands", a.commands.size(), "more_commands", a.moreCommands, "cancelled", a.cancelled.size(),
                "inventory_requested", a.inventoryRequested, "keys_replaced", keysReplaced,
                "ignored_fields", a.ignoredFields));
        if (keysReplaced) {
            events.emit("keys_replaced", Json.obj("kids", keyring.kids()));
        }
        List<Incoming> again = new ArrayList<>(reverify);
        reverify.clear();
        for (String id : a.cancelled) {
            commands.cancel(id);
        }
        for (String envelope : a.commands) {
            accept(new Incoming(envelope, "heartbeat", false));
        }
        for (Incoming in : again) {
            accept(new Incoming(in.json, in.source, true));
        }
        if (a.moreCommands) {
            pullRequested.set(true);
        }
        policy.onHeartbeat(a.policyVersion);
        stores.seenIds.prune(serverClock.nowS());
        if (a.inventoryRequested) {
            op = "inventory";
            List<AppInfo> capped = apps.size() > 5000 ? apps.subList(0, 5000) : apps;
            List<JSONObject> items = new ArrayList<>(capped.size());
            for (AppInfo app : capped) {
                items.add(app.toJson());
            }
            api.putInventory(Json.array(items));
            events.emit("inventory_sent", Json.obj("apps", capped.size(), "apps_hash", AppsHash.of(apps)));
        }
    }

    static long clampInterval(long s) {
        return Math.max(MIN_INTERVAL_S, Math.min(MAX_INTERVAL_S, s));
    }

    private void pull() throws IOException, ApiException {
        op = "pull";
        CommandsPage page = api.pullCommands(config.pullLimit);
        events.emit("pull", Json.obj("commands", page.commands.size(), "more", page.more));
        for (String envelope : page.commands) {
            accept(new Incoming(envelope, "pull", false));
        }
        if (page.more) {
            pullRequested.set(true);
        }
    }

    private void drainInbox() {
        if (!heartbeatSinceStart) {
            return; // the server clock is not known yet, and nothing runs before a heartbeat
        }
        for (Incoming in; (in = inbox.poll()) != null; ) {
            accept(in);
        }
    }

    // ---- the device rules -------------------------------------------------------------------

    private void accept(Incoming in) {
        Verification bad = commands.accept(in.json, in.source, keyring);
        if (bad != null) {
            onBadEnvelope(in, bad);
        }
    }

    private void onBadEnvelope(Incoming in, Verification v) {
        if (in.retry) {
            events.emit("bad_envelope", Json.obj("reason", v.name(), "kid", v.kid, "source", in.source,
                    "retry", true, "action", "dropped"));
            return;
        }
        reverify.add(in);
        countBadAndRefreshKeys();
        events.emit("bad_envelope", Json.obj("reason", v.name(), "kid", v.kid, "source", in.source,
                "retry", false, "bad_envelopes", state.badEnvelopes));
    }

    /** Rule 1 for envelopes and policies alike: count it, and heartbeat soon (it refreshes keys). */
    private void countBadAndRefreshKeys() {
        state.badEnvelopes++;
        stores.state.save(state);
        // Heartbeat now (it refreshes keys), but at most one such extra heartbeat per interval,
        // so a server that keeps serving a bad envelope cannot make the device spin.
        long now = clock.elapsedMs();
        if (now - lastRefreshHeartbeatMs >= state.heartbeatIntervalS * 1000) {
            lastRefreshHeartbeatMs = now;
            heartbeatRequested.set(true);
        }
    }

    private void advanceSeq(long seq) {
        if (seq > state.lastSeq) {
            state.lastSeq = seq;
            stores.state.save(state);
        }
    }

    // ---- running commands -------------------------------------------------------------------

    /**
     * Rule 4: one at a time in seq order; on a gap pull first, then skip what is still absent.
     * The command itself runs on {@link AgentConfig#commandExecutor}: off this loop on a device, so
     * a long install never holds back a heartbeat (the device would look offline); inline in tests.
     */
    private void executeReady() throws IOException, ApiException {
        while (!stopped && !commands.isBusy()) {
            if (heartbeatRequested.get() || clock.elapsedMs() >= nextHeartbeatAtMs) {
                return; // the next step heartbeats first
            }
            CommandRecord next = commands.nextPending();
            if (next == null) {
                return;
            }
            if (state.lastSeq >= 0 && next.seq > state.lastSeq + 1) {
                if (gapPulledForSeq != next.seq) {
                    events.emit("gap", Json.obj("expected_seq", state.lastSeq + 1, "next_seq", next.seq));
                    pull();
                    gapPulledForSeq = next.seq;
                    drainInbox();
                    continue;
                }
                events.emit("skipped_gap", Json.obj("from_seq", state.lastSeq + 1, "to_seq", next.seq - 1));
            }
            commands.start(next);
            if (!commands.isBusy()) {
                commands.flushResults(); // it ran inline (or was rejected without running)
            }
            if (commands.takeBackoffScheduled()) {
                commandBackoff = true;
                return;
            }
        }
    }

    // ---- backoff and sleeping ---------------------------------------------------------------

    void backOff(long retryAfterS, String reason, int httpStatus, String message) {
        scheduleBackoff(backoff.nextDelayMs(retryAfterS), reason, httpStatus, retryAfterS, message);
    }

    void scheduleBackoff(long delayMs, String reason, int httpStatus, long retryAfterS, String message) {
        backoffUntilMs = clock.elapsedMs() + delayMs;
        JSONObject fields = Json.obj("seconds", delayMs / 1000.0, "op", op, "reason", reason,
                "attempt", backoff.failures());
        if (httpStatus > 0) {
            Json.put(fields, "http_status", httpStatus);
        }
        if (retryAfterS >= 0) {
            Json.put(fields, "retry_after_s", retryAfterS);
        }
        if (message != null && !message.isEmpty()) {
            Json.put(fields, "message", message);
        }
        events.emit("backoff", fields);
    }

    private void wakeUp() {
        synchronized (wake) {
            woken = true;
            wake.notifyAll();
        }
    }

    /**
     * Waits up to ms for a push, a request or {@link #stop()}; for hosts that drive {@link #step()}
     * themselves (the Android service holds a wake lock around each step).
     */
    public void awaitWork(long ms) {
        long deadline = System.nanoTime() / 1_000_000 + ms;
        synchronized (wake) {
            try {
                for (long left = ms; !woken && !stopped && left > 0; left = deadline - System.nanoTime() / 1_000_000) {
                    wake.wait(left);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                stopped = true;
            }
            woken = false;
        }
    }

    // ---- read-only views for hosts and tests ------------------------------------------------

    public synchronized DeviceState state() {
        start();
        return state.copy();
    }

    public List<String> kids() {
        return keyring.kids();
    }

    public boolean hasHeartbeatSinceStart() {
        return heartbeatSinceStart;
    }

    public int countPending() {
        return commands.countPending();
    }

    public int countDone() {
        return commands.countDone();
    }
}
