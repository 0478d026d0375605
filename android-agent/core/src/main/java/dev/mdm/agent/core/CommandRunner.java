package dev.mdm.agent.core;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;

import org.json.JSONObject;

import dev.mdm.agent.core.clock.Clock;
import dev.mdm.agent.core.clock.ServerClock;
import dev.mdm.agent.core.envelope.Command;
import dev.mdm.agent.core.envelope.EnvelopeVerifier;
import dev.mdm.agent.core.envelope.Keyring;
import dev.mdm.agent.core.envelope.Verification;
import dev.mdm.agent.core.exec.CommandResult;
import dev.mdm.agent.core.exec.CommandRouter;
import dev.mdm.agent.core.exec.RetryLaterException;
import dev.mdm.agent.core.net.ApiException;
import dev.mdm.agent.core.net.DeviceApi;
import dev.mdm.agent.core.store.CommandRecord;
import dev.mdm.agent.core.store.SeenIdStore;
import dev.mdm.agent.core.store.Stores;
import dev.mdm.agent.core.util.Json;

/**
 * The agent's commands once verified: started one at a time on the host's command executor
 * (beside the loop on a device), their results held and posted until the server has them, and
 * the ones found RUNNING at a start judged. The {@link Agent} decides when (heartbeat first, seq
 * order, gaps); the results change the agent's state only under its lock.
 */
final class CommandRunner {
    /** What a command's end does to the agent around it. */
    interface Host {
        String deviceId();

        void advanceSeq(long seq);

        /** A command asked to be tried later: the loop backs off (called under the lock). */
        void backOff(long retryAfterS, String reason, String message);

        void setOp(String op);

        void wakeUp();
    }

    private final AgentConfig config;
    private final DeviceApi api;
    private final Stores stores;
    private final CommandRouter router;
    private final Clock clock;
    private final ServerClock serverClock;
    private final EventSink events;
    private final Host host;
    private final Object lock;
    /** The id of the command running on the command executor, or null. */
    private volatile String inFlight;
    /** Set when a command asked to be tried later; the step ends on the backoff it set. */
    private boolean backoffScheduled;

    CommandRunner(AgentConfig config, DeviceApi api, Stores stores, CommandRouter router, Clock clock,
            ServerClock serverClock, EventSink events, Host host, Object lock) {
        this.config = config;
        this.api = api;
        this.stores = stores;
        this.router = router;
        this.clock = clock;
        this.serverClock = serverClock;
        this.events = events;
        this.host = host;
        this.lock = lock;
    }

    boolean isBusy() {
        return inFlight != null;
    }

    /** True once after a command asked to be retried later. */
    boolean takeBackoffScheduled() {
        boolean b = backoffScheduled;
        backoffScheduled = false;
        return b;
    }

    /**
     * Rules 1-3 for one envelope: queued, rejected (reported) or dropped as a duplicate, and null
     * returned; or the verification of an envelope that failed its checks, for the agent to count.
     */
    Verification accept(String json, String source, Keyring keyring) {
        Verification v = EnvelopeVerifier.verify(json, keyring, host.deviceId(), serverClock.nowS());
        if (v.isBad()) {
            return v;
        }
        Command c = v.command;
        if (isDuplicate(c.id, source)) {
            return null;
        }
        stores.seenIds.put(c.id, new SeenIdStore.Entry(c.expiresAt + SeenIdStore.FORGET_AFTER_EXPIRY_S, null));
        if (v.outcome == Verification.Outcome.REJECTED) {
            stores.commands.put(CommandRecord.done(c, CommandResult.rejected(v.reason, null).toJson()));
            if (Verification.EXPIRED.equals(v.reason)) {
                host.advanceSeq(c.seq); // wrong_device: that seq is another device's, not ours
            }
            events.emit("rejected", Json.obj("id", c.id, "seq", c.seq, "type", c.type, "reason", v.reason,
                    "source", source));
            return null;
        }
        stores.commands.put(CommandRecord.pending(c, json));
        reportProgress(c.id, "received");
        events.emit("command_verified", Json.obj("id", c.id, "seq", c.seq, "type", c.type, "kid", v.kid,
                "source", source));
        return null;
    }

    /** Rule 3: drop a seen id silently; if its final result is held, post that result again. */
    private boolean isDuplicate(String id, String source) {
        SeenIdStore.Entry seen = stores.seenIds.get(id);
        CommandRecord held = stores.commands.get(id);
        if (seen == null && held == null) {
            return false;
        }
        boolean repost = held == null && seen != null && seen.finalResult != null;
        if (repost) {
            stores.commands.put(CommandRecord.resend(id, seen.finalResult));
        }
        events.emit("duplicate", Json.obj("id", id, "source", source, "reposted", repost));
        return true;
    }

    void cancel(String id) {
        CommandRecord r = stores.commands.get(id);
        if (r != null && r.state == CommandRecord.State.PENDING) {
            stores.commands.remove(id);
            host.advanceSeq(r.seq);
            events.emit("cancelled", Json.obj("id", id, "seq", r.seq, "reason", "cancelled"));
        }
        if (stores.seenIds.get(id) == null) {
            // A late push copy must not run it; its expiry is unknown, so keep it past any lifetime.
            long forget = serverClock.nowS() + EnvelopeVerifier.MAX_LIFETIME_S + SeenIdStore.FORGET_AFTER_EXPIRY_S;
            stores.seenIds.put(id, new SeenIdStore.Entry(forget, null));
        }
    }

    /** A command found RUNNING at start: the process ended while it ran ({@link dev.mdm.agent.core.exec.CommandRouter#afterRestart}). */
    JSONObject reconcile(CommandRecord r) {
        CommandResult result = "reboot".equals(r.type) ? rebootOutcome(r)
                : router.afterRestart(r.toCommand(host.deviceId()), r.attempts < config.maxCommandAttempts);
        JSONObject fields = Json.obj("id", r.id, "seq", r.seq, "type", r.type, "attempts", r.attempts);
        if (result == null) {
            r.state = CommandRecord.State.PENDING;
            stores.commands.put(r);
            Json.put(fields, "outcome", "retry");
            return fields;
        }
        r.state = CommandRecord.State.DONE;
        r.result = result.toJson();
        stores.commands.put(r);
        host.advanceSeq(r.seq);
        Json.put(fields, "outcome", result.status);
        if (result.error != null) {
            Json.put(fields, "error", result.error);
        }
        return fields;
    }

    /**
     * A reboot found RUNNING: done only if the device did boot since it started. elapsedRealtime
     * restarts at a boot, so a smaller one than at the start is proof; a larger one means the
     * agent restarted without the device going down (the reboot was refused or never happened).
     */
    private CommandResult rebootOutcome(CommandRecord r) {
        if (r.startedElapsedMs < 0) {
            return CommandResult.failed("interrupted: the agent restarted and cannot tell whether the device rebooted");
        }
        long now = clock.elapsedMs();
        if (now < r.startedElapsedMs) {
            return CommandResult.succeeded(0, "the device booted again (uptime " + now / 1000 + " s)");
        }
        return CommandResult.failed("the agent restarted but the device did not reboot (uptime continued from "
                + r.startedElapsedMs / 1000 + " s to " + now / 1000 + " s)");
    }

    CommandRecord nextPending() {
        CommandRecord best = null;
        for (CommandRecord r : stores.commands.all()) {
            if (r.state == CommandRecord.State.PENDING && (best == null || ORDER.compare(r, best) < 0)) {
                best = r;
            }
        }
        return best;
    }

    private static final Comparator<CommandRecord> ORDER =
            Comparator.comparingLong((CommandRecord r) -> r.seq).thenComparing(r -> r.id);

    /**
     * Runs task on the command executor when no command runs (a policy's apply: never beside a
     * command, never on the loop); false when busy. The loop is woken when it ends.
     */
    boolean tryRunExclusive(Runnable task) {
        if (inFlight != null) {
            return false;
        }
        inFlight = "policy";
        config.commandExecutor.execute(() -> {
            try {
                task.run();
            } finally {
                synchronized (lock) {
                    inFlight = null;
                }
                host.wakeUp();
            }
        });
        return true;
    }

    void start(CommandRecord r) {
        host.setOp("execute");
        Command c = r.toCommand(host.deviceId());
        long startedMs = clock.elapsedMs();
        if (EnvelopeVerifier.isExpired(c, serverClock.nowS())) {
            finishCommand(r, CommandResult.rejected(Verification.EXPIRED, "expired before its turn"), null, startedMs);
            return;
        }
        r.state = CommandRecord.State.RUNNING;
        r.attempts++;
        r.startedElapsedMs = startedMs;
        stores.commands.put(r);
        reportProgress(r.id, "running");
        inFlight = r.id;
        config.commandExecutor.execute(() -> runOffLoop(r, c, startedMs));
    }

    /** On the command executor's thread: the executor's work, then its result under the agent's lock. */
    private void runOffLoop(CommandRecord r, Command c, long startedMs) {
        CommandResult result = null;
        RetryLaterException retry = null;
        try {
            result = router.execute(c);
        } catch (RetryLaterException e) {
            retry = e;
        } catch (RuntimeException e) {
            result = CommandResult.failed("the agent failed running it: " + e);
        }
        synchronized (lock) {
            inFlight = null;
            finishCommand(r, result, retry, startedMs);
        }
        host.wakeUp();
    }

    private void finishCommand(CommandRecord r, CommandResult result, RetryLaterException retry, long startedMs) {
        if (retry != null) {
            if (r.attempts < config.maxCommandAttempts) {
                r.state = CommandRecord.State.PENDING;
                stores.commands.put(r);
                backoffScheduled = true;
                host.backOff(retry.retryAfterS, "command_retry", retry.getMessage());
                return;
            }
            result = CommandResult.failed(retry.getMessage());
        }
        r.state = CommandRecord.State.DONE;
        r.result = result.toJson();
        stores.commands.put(r);
        host.advanceSeq(r.seq);
        JSONObject fields = Json.obj("id", r.id, "seq", r.seq, "type", r.type, "status", result.status,
                "duration_ms", clock.elapsedMs() - startedMs);
        if (result.exitCode != null) {
            Json.put(fields, "exit_code", result.exitCode);
        }
        if (result.error != null) {
            Json.put(fields, "error", result.error);
        }
        if (result.reason != null) {
            Json.put(fields, "reason", result.reason);
        }
        events.emit("command_executed", fields);
    }

    /**
     * received / running: best effort, never held or retried (the final result is what must
     * arrive); a failure here must not stop the command, so nothing is thrown.
     */
    void reportProgress(String id, String status) {
        if (!config.reportProgress) {
            return;
        }
        try {
            api.postResult(id, Json.obj("status", status));
        } catch (IOException | ApiException | RuntimeException e) {
            events.emit("progress_not_reported", Json.obj("id", id, "status", status, "message", e.toString()));
        }
    }

    /** Posts every held result; the record (and its envelope) goes once the server has it. */
    void flushResults() throws IOException, ApiException {
        List<CommandRecord> done = new ArrayList<>();
        for (CommandRecord r : stores.commands.all()) {
            if (r.state == CommandRecord.State.DONE) {
                done.add(r);
            }
        }
        done.sort(ORDER);
        for (Iterator<CommandRecord> it = done.iterator(); it.hasNext(); ) {
            CommandRecord r = it.next();
            host.setOp("result");
            String serverStatus;
            try {
                serverStatus = api.postResult(r.id, r.result);
            } catch (ApiException e) {
                if (e.isRetryable() || e.isTokenInvalid()) {
                    throw e;
                }
                // 400/404: the server will never take this report; holding it would block nothing
                // but would be posted forever.
                stores.commands.remove(r.id);
                events.emit("result_dropped", Json.obj("id", r.id, "status", Json.string(r.result, "status"),
                        "http_status", e.status, "code", e.code, "message", e.detail));
                continue;
            }
            SeenIdStore.Entry seen = stores.seenIds.get(r.id);
            long forget = seen != null ? seen.forgetAtS
                    : serverClock.nowS() + EnvelopeVerifier.MAX_LIFETIME_S + SeenIdStore.FORGET_AFTER_EXPIRY_S;
            stores.seenIds.put(r.id, new SeenIdStore.Entry(forget, r.result));
            stores.commands.remove(r.id);
            JSONObject fields = Json.obj("id", r.id, "status", Json.string(r.result, "status"), "server_status", serverStatus);
            String reason = Json.string(r.result, "reason");
            if (reason != null) {
                Json.put(fields, "reason", reason);
            }
            events.emit("result_posted", fields);
        }
    }

    int countPending() {
        int n = 0;
        for (CommandRecord r : stores.commands.all()) {
            n += r.state == CommandRecord.State.PENDING ? 1 : 0;
        }
        return n;
    }

    int countDone() {
        int n = 0;
        for (CommandRecord r : stores.commands.all()) {
            n += r.state == CommandRecord.State.DONE ? 1 : 0;
        }
        return n;
    }
}
