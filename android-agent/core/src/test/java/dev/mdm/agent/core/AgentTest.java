package dev.mdm.agent.core;

import static org.hamcrest.MatcherAssert.assertThat;
import static org.hamcrest.Matchers.contains;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.empty;
import static org.hamcrest.Matchers.greaterThan;
import static org.hamcrest.Matchers.greaterThanOrEqualTo;
import static org.hamcrest.Matchers.hasItem;
import static org.hamcrest.Matchers.hasSize;
import static org.hamcrest.Matchers.is;
import static org.hamcrest.Matchers.lessThanOrEqualTo;
import static org.hamcrest.Matchers.not;
import static org.hamcrest.Matchers.nullValue;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.json.JSONObject;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

import dev.mdm.agent.core.envelope.Command;
import dev.mdm.agent.core.envelope.CommandKey;
import dev.mdm.agent.core.envelope.EnvelopeVerifier;
import dev.mdm.agent.core.exec.ApkFetcher;
import dev.mdm.agent.core.exec.CommandRouter;
import dev.mdm.agent.core.exec.ShellAllowlist;
import dev.mdm.agent.core.net.HttpDeviceApi;
import dev.mdm.agent.core.store.CommandRecord;
import dev.mdm.agent.core.store.FileStores;
import dev.mdm.agent.core.store.SeenIdStore;
import dev.mdm.agent.core.store.Stores;
import dev.mdm.agent.core.support.FakeClock;
import dev.mdm.agent.core.support.FakeMdm;
import dev.mdm.agent.core.support.RecordingActions;
import dev.mdm.agent.core.support.RecordingEvents;
import dev.mdm.agent.core.telemetry.AppInfo;
import dev.mdm.agent.core.telemetry.AppsHash;
import dev.mdm.agent.core.util.Json;
import dev.mdm.agent.core.util.Sha256;

/** The agent loop end to end against {@link FakeMdm} over loopback HTTP, with a controlled clock. */
public class AgentTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private FakeMdm mdm;
    private FakeClock clock;
    private RecordingEvents events;
    private RecordingActions actions;
    private final List<AppInfo> apps = new ArrayList<>(Collections.singletonList(new AppInfo("com.example.kiosk", "1.0", 3, false, true)));
    private Agent agent;

    @Before
    public void setUp() throws Exception {
        mdm = new FakeMdm();
        clock = new FakeClock();
        events = new RecordingEvents();
        actions = new RecordingActions();
        apkDir = tmp.newFolder();
        agent = newAgent(Stores.inMemory(), 1);
    }

    @After
    public void tearDown() {
        mdm.close();
    }

    private Stores stores;
    /** Kept across the restarts of one test, as the app's files are. */
    private File apkDir;

    private Agent newAgent(Stores stores, long seed) throws Exception {
        this.stores = stores;
        AgentConfig config = new AgentConfig();
        config.enrollKey = FakeMdm.ENROLL_KEY;
        config.hardwareId = "hw-1";
        HttpDeviceApi api = new HttpDeviceApi(mdm.url(), 2_000, 5_000, "test");
        CommandRouter router = new CommandRouter(actions, ShellAllowlist.defaults(),
                ApkFetcher.downloading(api, apkDir));
        return new Agent(config, api, stores, router, () -> Json.obj("battery_pct", 80), () -> new ArrayList<>(apps),
                clock, new Random(seed), events);
    }

    /** Enrolled, first heartbeat and start pull done. */
    private void enrolled() {
        agent.step();
        assertThat(events.names(), hasItem("heartbeat"));
    }

    private void nextHeartbeat() {
        clock.advanceS(34); // past interval + 10 % jitter
        agent.step();
    }

    private JSONObject lastHeartbeatBody() {
        return mdm.heartbeats.get(mdm.heartbeats.size() - 1);
    }

    private CommandRecord.State pendingState(String id) {
        for (CommandRecord r : stores.commands.all()) {
            if (r.id.equals(id)) {
                return r.state;
            }
        }
        return null;
    }

    private JSONObject signed(FakeMdm.Cmd c) {
        return mdm.envelope(c);
    }

    // ---- enrollment and heartbeat -----------------------------------------------------------

    @Test
    public void it_enrolls_then_heartbeats_and_pulls_before_anything_else() {
        agent.step();
        List<String> names = events.names();
        assertThat(names.subList(0, 3), contains("started", "enrolled", "heartbeat"));
        assertTrue(names.indexOf("pull") > names.indexOf("heartbeat"));
        assertThat(mdm.enrollments, hasSize(1));
        assertEquals("hw-1", mdm.enrollments.get(0).optString("hardware_id"));
        assertTrue(mdm.enrollments.get(0).isNull("_authorization"));
        JSONObject hb = mdm.heartbeats.get(0);
        assertEquals(mdm.device().keys.get(0).kid, Json.strings(hb, "kids").get(0));
        assertEquals(0, hb.optLong("bad_envelopes", -1));
        assertEquals(AppsHash.of(apps), hb.optString("apps_hash"));
        assertEquals(80, hb.optInt("battery_pct"));
        assertEquals(0, hb.optLong("device_time", -1)); // the dead wall clock is reported, never trusted
        assertEquals(mdm.device().id, agent.state().deviceId);
    }

    @Test
    public void it_sends_the_inventory_when_asked_and_only_then() {
        enrolled();
        assertThat(mdm.inventories, hasSize(1));
        assertEquals(AppsHash.of(apps), mdm.storedAppsHash);
        JSONObject app = mdm.inventories.get(0).optJSONArray("apps").optJSONObject(0);
        assertEquals("com.example.kiosk", app.optString("package"));
        assertEquals(3, app.optLong("version_code"));
        nextHeartbeat();
        assertThat(mdm.inventories, hasSize(1));
        apps.add(new AppInfo("com.example.other", "2", 2, false, false));
        nextHeartbeat();
        assertThat(mdm.inventories, hasSize(2));
        assertThat(events.named("inventory_sent"), hasSize(2));
    }

    @Test
    public void heartbeats_follow_the_server_interval_with_ten_percent_jitter() {
        mdm.reenrollAllowed = true; // five fresh agents, one hardware id: each enrolls anew
        for (long seed = 1; seed <= 5; seed++) {
            events.clear();
            FakeClock c = new FakeClock();
            clock = c;
            try {
                agent = newAgent(Stores.inMemory(), seed);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
            agent.step();
            int before = mdm.heartbeats.size();
            clock.advanceMs(26_999);
            agent.step();
            assertEquals("no heartbeat before 0.9 x interval", before, mdm.heartbeats.size());
            clock.advanceMs(6_002);
            agent.step();
            assertEquals("a heartbeat by 1.1 x interval", before + 1, mdm.heartbeats.size());
        }
    }

    // ---- running commands -------------------------------------------------------------------

    @Test
    public void a_command_from_the_heartbeat_runs_and_its_result_is_posted_then_deleted() {
        enrolled();
        FakeMdm.Cmd c = mdm.queue("launch_app", Json.obj("package", "com.example.kiosk"));
        nextHeartbeat();
        assertThat(actions.calls(), contains("launch_app com.example.kiosk"));
        assertEquals("succeeded", c.status);
        assertThat(mdm.resultsFor(c.id), hasSize(1));
        assertThat(agent.countDone(), is(0));
        JSONObject posted = events.named("result_posted").get(0);
        assertEquals(c.id, posted.optString("id"));
        assertEquals("succeeded", posted.optString("server_status"));
    }

    @Test
    public void commands_run_one_at_a_time_in_seq_order_and_more_commands_pulls() {
        enrolled();
        mdm.heartbeatCommandLimit = 1;
        mdm.queue("ping", null);
        mdm.queue("lock", null);
        mdm.queue("reboot", null);
        int pulls = mdm.pulls;
        nextHeartbeat();
        assertThat(actions.calls(), contains("ping", "lock", "reboot"));
        assertThat(mdm.pulls, greaterThanOrEqualTo(pulls + 1));
    }

    @Test
    public void a_duplicate_is_dropped_and_a_held_final_result_is_posted_again() {
        enrolled();
        FakeMdm.Cmd c = mdm.queue("ping", null);
        nextHeartbeat();
        assertThat(actions.calls(), contains("ping"));
        agent.addEnvelope(signed(c).toString(), "push"); // push and pull overlap routinely
        agent.step();
        assertThat(actions.calls(), contains("ping"));
        assertThat(mdm.resultsFor(c.id), hasSize(2));
        assertEquals("succeeded", mdm.resultsFor(c.id).get(1).optString("status"));
        assertTrue(events.named("duplicate").get(0).optBoolean("reposted"));
    }

    @Test
    public void a_command_arriving_by_push_and_heartbeat_runs_once() {
        enrolled();
        FakeMdm.Cmd c = mdm.queue("lock", null);
        agent.addEnvelope(signed(c).toString(), "push");
        agent.step();
        nextHeartbeat(); // the server still serves it until... it has the result: here it does
        agent.addEnvelope(signed(c).toString(), "push");
        agent.step();
        assertThat(actions.calls(), contains("lock"));
    }

    @Test
    public void a_seq_gap_pulls_first_and_runs_the_missing_command_in_order() {
        enrolled();
        mdm.heartbeatCommandLimit = 0; // commands reach the device only by push or pull here
        FakeMdm.Cmd first = mdm.queue("ping", null);
        agent.addEnvelope(signed(first).toString(), "push");
        agent.step();
        FakeMdm.Cmd second = mdm.queue("lock", null);
        FakeMdm.Cmd third = mdm.queue("reboot", null);
        int pulls = mdm.pulls;
        agent.addEnvelope(signed(third).toString(), "push");
        agent.step();
        assertThat(mdm.pulls, is(pulls + 1));
        assertThat(actions.calls(), contains("ping", "lock", "reboot"));
        assertEquals("succeeded", second.status);
        assertThat(events.named("skipped_gap"), empty());
    }

    @Test
    public void ids_still_absent_after_the_gap_pull_are_skipped() {
        enrolled();
        mdm.heartbeatCommandLimit = 0;
        FakeMdm.Cmd first = mdm.queue("ping", null);
        agent.addEnvelope(signed(first).toString(), "push");
        agent.step();
        FakeMdm.Cmd lost = mdm.queue("lock", null);
        lost.status = "cancelled"; // no longer served, and the device never heard of it
        FakeMdm.Cmd third = mdm.queue("reboot", null);
        agent.addEnvelope(signed(third).toString(), "push");
        agent.step();
        assertThat(actions.calls(), contains("ping", "reboot"));
        JSONObject skipped = events.named("skipped_gap").get(0);
        assertEquals(2, skipped.optLong("from_seq"));
        assertEquals(2, skipped.optLong("to_seq"));
        assertEquals(3, agent.state().lastSeq);
    }

    // ---- time -------------------------------------------------------------------------------

    @Test
    public void expiry_is_judged_by_server_time_plus_monotonic_elapsed() {
        mdm.intervalS = 3600; // no heartbeat refreshes server_time during the test
        enrolled();
        long t = mdm.now;
        FakeMdm.Cmd stale = mdm.queue(mdm.device(), "ping", null, t, t + 3300);
        FakeMdm.Cmd fresh = mdm.queue(mdm.device(), "lock", null, t, t + 3400);
        clock.advanceS(3500); // device now = t + 3500; the device's own wall clock says 1970
        agent.addEnvelope(signed(stale).toString(), "push");
        agent.addEnvelope(signed(fresh).toString(), "push");
        agent.step();
        assertThat(actions.calls(), contains("lock")); // t+3400+120 >= t+3500: inside the grace
        assertEquals("rejected", stale.status);
        assertEquals("expired", stale.reason);
        assertEquals("expired", events.named("rejected").get(0).optString("reason"));
    }

    @Test
    public void a_command_that_expires_while_queued_offline_is_rejected_at_its_turn() throws Exception {
        File dir = tmp.newFolder();
        agent = newAgent(FileStores.open(dir), 1);
        enrolled();
        mdm.heartbeatCommandLimit = 0;
        FakeMdm.Cmd c = mdm.queue(mdm.device(), "ping", null, mdm.now, mdm.now + 60);
        // Held from an earlier run (e.g. verified just before a crash).
        Stores stores = FileStores.open(dir);
        stores.commands.put(CommandRecord.pending(Command.parse(mdm.payload(c)), signed(c).toString()));
        mdm.now += 600;
        agent = newAgent(FileStores.open(dir), 2);
        agent.step();
        assertThat(actions.calls(), empty());
        assertEquals("rejected", c.status);
        assertEquals("expired", c.reason);
    }

    // ---- keys and bad envelopes -------------------------------------------------------------

    @Test
    public void new_command_keys_replace_the_set_before_the_same_answers_commands_are_verified() {
        enrolled();
        CommandKey old = mdm.device().keys.get(0);
        FakeMdm.Cmd signedWithOld = mdm.queue("ping", null);
        JSONObject oldEnvelope = signed(signedWithOld);
        signedWithOld.status = "cancelled";
        mdm.device().keys = new ArrayList<>(Arrays.asList(mdm.newKey("k2")));
        FakeMdm.Cmd c = mdm.queue("lock", null);
        nextHeartbeat();
        assertThat(actions.calls(), contains("lock"));
        assertThat(events.named("bad_envelope"), empty());
        assertThat(agent.kids(), contains("k2"));
        assertThat(events.named("keys_replaced"), hasSize(1));
        assertEquals("succeeded", c.status);
        // Replaced entirely: the old key is gone at once.
        agent.addEnvelope(oldEnvelope.toString(), "push");
        agent.step();
        assertEquals("unknown_kid", events.named("bad_envelope").get(0).optString("reason"));
        assertThat(agent.kids(), not(hasItem(old.kid)));
        nextHeartbeat();
        assertThat(Json.strings(lastHeartbeatBody(), "kids"), contains("k2"));
    }

    @Test
    public void both_held_keys_verify() {
        enrolled();
        CommandKey current = mdm.device().keys.get(0);
        CommandKey next = mdm.newKey("kz");
        mdm.device().keys = new ArrayList<>(Arrays.asList(current, next));
        nextHeartbeat();
        assertThat(agent.kids(), hasSize(2));
        FakeMdm.Cmd a = mdm.queue("ping", null);
        FakeMdm.Cmd b = mdm.queue("lock", null);
        agent.addEnvelope(EnvelopeVerifier.sign(mdm.payload(a), current.kid, current.key()).toString(), "push");
        agent.addEnvelope(EnvelopeVerifier.sign(mdm.payload(b), next.kid, next.key()).toString(), "push");
        agent.step();
        assertThat(actions.calls(), contains("ping", "lock"));
    }

    @Test
    public void a_tampered_envelope_is_counted_reported_in_the_next_heartbeat_and_verified_once_more() {
        enrolled();
        FakeMdm.Cmd c = mdm.queue("ping", null);
        c.status = "cancelled"; // the server will not serve it: only the tampered copy exists
        JSONObject env = signed(c);
        Json.put(env, "payload", env.optString("payload").replace("\"ping\"", "\"reboot\""));
        agent.addEnvelope(env.toString(), "inject");
        agent.step(); // verifies (bad), then asks for a heartbeat at once
        agent.step(); // that heartbeat, then the second and last verification
        List<JSONObject> bad = events.named("bad_envelope");
        assertThat(bad, hasSize(2));
        assertEquals("bad_signature", bad.get(0).optString("reason"));
        assertTrue(bad.get(1).optBoolean("retry"));
        assertEquals(1, lastHeartbeatBody().optLong("bad_envelopes"));
        assertThat(mdm.results, empty()); // never reported against the unverified id
        assertThat(actions.calls(), empty());
        nextHeartbeat();
        assertEquals(0, lastHeartbeatBody().optLong("bad_envelopes"));
        assertThat(events.named("bad_envelope"), hasSize(2));
    }

    @Test
    public void a_push_signed_with_a_key_not_yet_held_runs_after_the_refreshing_heartbeat() {
        enrolled();
        mdm.device().keys = new ArrayList<>(Arrays.asList(mdm.newKey("k7")));
        mdm.heartbeatCommandLimit = 0;
        FakeMdm.Cmd c = mdm.queue("lock", null);
        agent.addEnvelope(signed(c).toString(), "push");
        agent.step();
        assertEquals("unknown_kid", events.named("bad_envelope").get(0).optString("reason"));
        agent.step();
        assertThat(actions.calls(), contains("lock"));
        assertEquals("succeeded", c.status);
    }

    @Test
    public void a_command_for_another_device_is_rejected_wrong_device() {
        enrolled();
        FakeMdm.Cmd c = mdm.queue("ping", null);
        c.status = "cancelled";
        JSONObject payload = Json.parseObjectOrNull(mdm.payload(c));
        Json.put(payload, "device_id", "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d");
        CommandKey k = mdm.device().keys.get(0);
        c.status = "sent";
        agent.addEnvelope(EnvelopeVerifier.sign(payload.toString(), k.kid, k.key()).toString(), "inject");
        agent.step();
        assertThat(actions.calls(), empty());
        assertEquals("rejected", c.status);
        assertEquals("wrong_device", c.reason);
        assertEquals(-1, agent.state().lastSeq); // another device's seq is not ours
    }

    @Test
    public void unsupported_types_and_disallowed_shell_are_rejected_with_their_reason() {
        enrolled();
        FakeMdm.Cmd unknown = mdm.queue("self_destruct", null);
        FakeMdm.Cmd shell = mdm.queue("shell", Json.obj("argv", Arrays.asList("rm", "-rf", "/")));
        FakeMdm.Cmd badParams = mdm.queue("launch_app", Json.obj("package", "not a package"));
        FakeMdm.Cmd okShell = mdm.queue("shell", Json.obj("argv", Arrays.asList("getprop", "ro.serialno")));
        nextHeartbeat();
        assertEquals("unsupported_type", unknown.reason);
        assertEquals("not_allowed", shell.reason);
        assertEquals("bad_params", badParams.reason);
        assertEquals("succeeded", okShell.status);
        assertThat(actions.calls(), contains("shell getprop ro.serialno"));
    }

    @Test
    public void cancelled_ids_drop_commands_not_yet_started() throws Exception {
        File dir = tmp.newFolder();
        agent = newAgent(FileStores.open(dir), 1);
        enrolled();
        mdm.heartbeatCommandLimit = 0;
        FakeMdm.Cmd c = mdm.queue("reboot", null);
        FileStores.open(dir).commands.put(CommandRecord.pending(Command.parse(mdm.payload(c)), signed(c).toString()));
        mdm.cancel(c);
        agent = newAgent(FileStores.open(dir), 2);
        agent.step();
        assertThat(actions.calls(), empty());
        assertEquals(c.id, events.named("cancelled").get(0).optString("id"));
        // A late push copy of it does not run either.
        agent.addEnvelope(signed(c).toString(), "push");
        agent.step();
        assertThat(actions.calls(), empty());
    }

    // ---- failures, backoff, restarts --------------------------------------------------------

    @Test
    public void network_errors_back_off_with_jitter_and_resume() {
        enrolled();
        mdm.down = true;
        clock.advanceS(34);
        int before = mdm.heartbeats.size();
        long delay = agent.step();
        JSONObject b = events.named("backoff").get(0);
        assertEquals("network", b.optString("reason"));
        assertThat((long) (b.optDouble("seconds") * 1000), lessThanOrEqualTo(1_000L));
        long offline = 0;
        while (offline < 35_000) { // 30 s+ of outage
            clock.advanceMs(delay);
            offline += delay;
            delay = agent.step();
            assertThat(delay, lessThanOrEqualTo(60_000L));
        }
        assertThat(events.named("backoff").size(), greaterThanOrEqualTo(3));
        assertEquals(before, mdm.heartbeats.size());
        mdm.down = false;
        FakeMdm.Cmd c = mdm.queue("ping", null);
        clock.advanceMs(delay);
        agent.step();
        assertEquals(before + 1, mdm.heartbeats.size());
        assertEquals("succeeded", c.status);
    }

    @Test
    public void retry_now_ends_a_backoff_when_the_network_returns() {
        enrolled();
        mdm.failNext(1, 503, "busy", 120);
        clock.advanceS(34);
        int before = mdm.heartbeats.size();
        assertThat(agent.step(), greaterThanOrEqualTo(120_000L));
        clock.advanceS(5);
        agent.step();
        assertEquals(before, mdm.heartbeats.size()); // still backing off
        agent.retryNow(); // e.g. the platform says the network is back
        agent.step();
        assertEquals(before + 1, mdm.heartbeats.size());
    }

    @Test
    public void a_429_is_honoured_with_its_retry_after() {
        enrolled();
        mdm.failNext(1, 429, "rate_limited", 7);
        clock.advanceS(34);
        long delay = agent.step();
        JSONObject b = events.named("backoff").get(0);
        assertEquals("rate_limited", b.optString("reason"));
        assertEquals(7, b.optLong("retry_after_s"));
        assertEquals(429, b.optInt("http_status"));
        assertThat(delay, greaterThanOrEqualTo(7_000L));
        int before = mdm.heartbeats.size();
        clock.advanceMs(6_900);
        agent.step();
        assertEquals(before, mdm.heartbeats.size());
        clock.advanceMs(delay);
        agent.step();
        assertEquals(before + 1, mdm.heartbeats.size());
    }

    @Test
    public void a_result_survives_an_outage_and_a_restart_and_is_posted_once_back() throws Exception {
        File dir = tmp.newFolder();
        agent = newAgent(FileStores.open(dir), 1);
        enrolled();
        FakeMdm.Cmd c = mdm.queue("ping", null);
        actions.duringPing = () -> mdm.down = true; // the network drops while the command runs
        nextHeartbeat();
        assertThat(actions.calls(), contains("ping"));
        assertThat(mdm.resultsFor(c.id), empty());
        CommandRecord held = FileStores.open(dir).commands.get(c.id);
        assertEquals(CommandRecord.State.DONE, held.state);
        assertNotNull(held.envelope);
        actions.duringPing = null;
        mdm.down = false;
        agent = newAgent(FileStores.open(dir), 2); // the process restarts
        agent.step();
        assertThat(actions.calls(), contains("ping"));
        assertThat(mdm.resultsFor(c.id), hasSize(1));
        assertEquals("succeeded", c.status);
        assertThat(FileStores.open(dir).commands.get(c.id), nullValue()); // envelope deleted
        SeenIdStore.Entry seen = FileStores.open(dir).seenIds.get(c.id);
        assertEquals(c.expiresAt + 86400, seen.forgetAtS);
        assertEquals("succeeded", seen.finalResult.optString("status"));
    }

    @Test
    public void a_command_interrupted_by_a_restart_is_failed_except_reboot() throws Exception {
        File dir = tmp.newFolder();
        agent = newAgent(FileStores.open(dir), 1);
        enrolled();
        mdm.heartbeatCommandLimit = 0;
        FakeMdm.Cmd launch = mdm.queue("launch_app", Json.obj("package", "com.example.kiosk"));
        FakeMdm.Cmd reboot = mdm.queue("reboot", null);
        Stores stores = FileStores.open(dir);
        for (FakeMdm.Cmd c : Arrays.asList(launch, reboot)) {
            CommandRecord r = CommandRecord.pending(Command.parse(mdm.payload(c)), signed(c).toString());
            r.state = CommandRecord.State.RUNNING;
            r.startedElapsedMs = clock.elapsedMs() + 600_000; // uptime was higher before: the device booted
            stores.commands.put(r);
        }
        agent = newAgent(FileStores.open(dir), 2);
        agent.step();
        assertEquals("failed", launch.status);
        assertEquals("succeeded", reboot.status);
        assertThat(actions.calls(), empty());
    }

    @Test
    public void a_reboot_found_running_after_a_restart_without_a_boot_is_failed_not_claimed() throws Exception {
        File dir = tmp.newFolder();
        agent = newAgent(FileStores.open(dir), 1);
        enrolled();
        mdm.heartbeatCommandLimit = 0;
        FakeMdm.Cmd reboot = mdm.queue("reboot", null);
        CommandRecord r = CommandRecord.pending(Command.parse(mdm.payload(reboot)), signed(reboot).toString());
        r.state = CommandRecord.State.RUNNING;
        clock.advanceS(100);
        r.startedElapsedMs = clock.elapsedMs() - 5_000; // uptime went on: only the agent restarted
        FileStores.open(dir).commands.put(r);
        agent = newAgent(FileStores.open(dir), 2);
        agent.step();
        assertEquals("failed", reboot.status);
        assertThat(mdm.resultsFor(reboot.id).get(0).optString("error"), containsString("did not reboot"));
    }

    @Test
    public void a_permanent_refusal_waits_hours_and_a_network_return_does_not_cut_it_short() throws Exception {
        AgentConfig config = new AgentConfig();
        config.enrollKey = "revoked";
        config.hardwareId = "hw-3";
        HttpDeviceApi api = new HttpDeviceApi(mdm.url(), 2_000, 5_000, "test");
        agent = new Agent(config, api, Stores.inMemory(), new CommandRouter(actions, ShellAllowlist.defaults(), null),
                () -> new JSONObject(), Collections::emptyList, clock, new Random(1), events);
        long first = agent.step();
        assertThat(first, greaterThanOrEqualTo(90 * 60_000L)); // 2 h, jittered by at most a quarter
        agent.retryNow();
        assertThat(agent.step(), greaterThanOrEqualTo(first - 1));
        assertThat(events.named("error"), hasSize(1)); // not asked again
        clock.advanceMs(first);
        long second = agent.step();
        assertThat(events.named("error"), hasSize(2));
        assertThat(second, greaterThanOrEqualTo(3 * 3600_000L)); // doubled
    }

    @Test
    public void it_does_not_run_anything_after_a_start_before_a_heartbeat() throws Exception {
        File dir = tmp.newFolder();
        agent = newAgent(FileStores.open(dir), 1);
        enrolled();
        FakeMdm.Cmd c = mdm.queue("ping", null);
        mdm.down = true;
        agent = newAgent(FileStores.open(dir), 2);
        agent.addEnvelope(signed(c).toString(), "push");
        agent.step();
        assertThat(actions.calls(), empty());
        assertTrue(!agent.hasHeartbeatSinceStart());
        mdm.down = false;
        clock.advanceS(120);
        agent.step();
        assertThat(actions.calls(), contains("ping"));
    }

    @Test
    public void token_invalid_re_enrolls_at_most_once_an_hour() {
        enrolled();
        String oldToken = mdm.device().token;
        String deviceId = mdm.device().id;
        mdm.forceTokenInvalid = true;
        nextHeartbeat();
        assertThat(mdm.enrollments, hasSize(2));
        assertEquals("Device " + oldToken, mdm.enrollments.get(1).optString("_authorization"));
        assertTrue(events.named("enrolled").get(1).optBoolean("reenrolled"));
        assertEquals(deviceId, agent.state().deviceId);
        agent.step();
        assertThat(events.named("heartbeat").size(), greaterThanOrEqualTo(2));

        mdm.forceTokenInvalid = true;
        clock.advanceS(600);
        long delay = agent.step();
        assertThat(mdm.enrollments, hasSize(2)); // not again within the hour
        assertThat(delay, greaterThanOrEqualTo(2_900_000L));
        clock.advanceMs(delay);
        agent.step();
        assertThat(mdm.enrollments, hasSize(3));
    }

    // ---- re-enrollment waiting for an admin (PROTOCOL.md v1.1) ------------------------------

    @Test
    public void after_a_factory_reset_it_waits_for_approval_repeating_its_request_id_on_the_backoff() {
        FakeMdm.Device known = mdm.known("hw-1"); // enrolled before the reset: the agent has no token
        long delay = agent.step();
        assertThat(mdm.enrollments, hasSize(1));
        String requestId = agent.state().reenrollRequest;
        assertNotNull(requestId);
        JSONObject pending = events.named("reenroll_pending").get(0);
        assertEquals(requestId, pending.optString("reenroll_request"));
        assertTrue(pending.optBoolean("new"));
        assertEquals("reenroll_needs_approval", events.named("backoff").get(0).optString("reason"));
        assertThat(delay, greaterThanOrEqualTo(30_000L));
        assertTrue(!agent.state().isEnrolled());

        clock.advanceMs(delay - 1);
        agent.step();
        assertThat(mdm.enrollments, hasSize(1)); // not before its backoff is over
        clock.advanceMs(1);
        delay = agent.step();
        assertThat(mdm.enrollments, hasSize(2));
        assertEquals(requestId, mdm.enrollments.get(1).optString("reenroll_request"));
        assertEquals(requestId, agent.state().reenrollRequest); // still pending: the same id
        assertTrue(!events.named("reenroll_pending").get(1).optBoolean("new"));

        mdm.decide(requestId, "approved");
        clock.advanceMs(delay);
        agent.step();
        assertThat(mdm.enrollments, hasSize(3));
        assertEquals(requestId, mdm.enrollments.get(2).optString("reenroll_request"));
        assertTrue(agent.state().isEnrolled());
        assertEquals(known.id, agent.state().deviceId);
        assertNull(agent.state().reenrollRequest);
        assertEquals("used", mdm.reenrollRequests.get(requestId).state);
        assertThat(events.names(), hasItem("heartbeat"));
    }

    @Test
    public void a_new_id_in_a_later_409_replaces_the_spent_one() {
        mdm.known("hw-1");
        long delay = agent.step();
        String first = agent.state().reenrollRequest;
        mdm.decide(first, "denied");
        clock.advanceMs(delay);
        delay = agent.step();
        String second = agent.state().reenrollRequest;
        assertNotNull(second);
        assertNotEquals(first, second);
        assertTrue(events.named("reenroll_pending").get(1).optBoolean("new"));
        mdm.decide(second, "approved");
        clock.advanceMs(delay);
        agent.step();
        assertEquals(second, mdm.enrollments.get(2).optString("reenroll_request"));
        assertTrue(agent.state().isEnrolled());
    }

    @Test
    public void waiting_an_hour_for_an_admin_never_loops_tightly_and_is_jittered() {
        mdm.known("hw-1");
        List<Long> delays = new ArrayList<>();
        for (long waited = 0; waited < 3_600_000; ) {
            long delay = agent.step();
            assertThat(delay, greaterThanOrEqualTo(30_000L)); // the refused floor ...
            assertThat(delay, lessThanOrEqualTo(90_000L)); // ... plus at most the backoff's cap
            delays.add(delay);
            clock.advanceMs(delay);
            waited += delay;
        }
        assertThat(mdm.enrollments.size(), lessThanOrEqualTo(120));
        assertThat(mdm.enrollments.size(), greaterThanOrEqualTo(40));
        assertThat(new HashSet<>(delays).size(), greaterThan(delays.size() / 2)); // not in lockstep
        assertEquals(1, mdm.reenrollRequests.size()); // one request, repeated
    }

    @Test
    public void a_device_whose_token_was_replaced_repeats_with_its_token_and_the_id_until_approved() {
        enrolled();
        String oldToken = mdm.device().token;
        mdm.device().token = "tok-of-someone-else"; // the server no longer knows the agent's token
        mdm.heartbeatCommandLimit = 0;
        FakeMdm.Cmd c = mdm.queue("ping", null);
        nextHeartbeat(); // token_invalid, then the re-enrollment with its (no longer current) token: 409
        assertThat(mdm.enrollments, hasSize(2));
        assertEquals("Device " + oldToken, mdm.enrollments.get(1).optString("_authorization"));
        String requestId = agent.state().reenrollRequest;
        assertNotNull(requestId);
        int heartbeats = mdm.heartbeats.size();

        long delay = agent.step(); // backing off
        clock.advanceMs(delay);
        delay = agent.step(); // on the backoff, not once an hour
        assertThat(mdm.enrollments, hasSize(3));
        assertEquals(requestId, mdm.enrollments.get(2).optString("reenroll_request"));
        assertEquals("Device " + oldToken, mdm.enrollments.get(2).optString("_authorization"));
        assertEquals(heartbeats, mdm.heartbeats.size()); // nothing else meanwhile

        mdm.decide(requestId, "approved");
        clock.advanceMs(delay);
        agent.step();
        assertNull(agent.state().reenrollRequest);
        assertTrue(events.named("enrolled").get(1).optBoolean("reenrolled"));
        assertEquals(requestId, events.named("enrolled").get(1).optString("reenroll_request"));
        assertThat(mdm.heartbeats.size(), greaterThan(heartbeats));
        assertEquals("cancelled", c.status); // the server cancelled it at the re-enrollment
        assertThat(actions.calls(), empty());
    }

    @Test
    public void the_awaited_request_id_survives_a_restart() throws Exception {
        File dir = tmp.newFolder();
        mdm.known("hw-1");
        agent = newAgent(FileStores.open(dir), 1);
        agent.step();
        String requestId = agent.state().reenrollRequest;
        assertNotNull(requestId);
        mdm.decide(requestId, "approved");
        agent = newAgent(FileStores.open(dir), 2); // the process restarts
        agent.step();
        assertEquals(requestId, mdm.enrollments.get(1).optString("reenroll_request"));
        assertTrue(agent.state().isEnrolled());
        assertNull(FileStores.open(dir).state.load().reenrollRequest);
    }

    @Test
    public void a_refused_enrollment_key_is_an_error_and_retried_slowly() throws Exception {
        AgentConfig config = new AgentConfig();
        config.enrollKey = "wrong";
        config.hardwareId = "hw-2";
        HttpDeviceApi api = new HttpDeviceApi(mdm.url(), 2_000, 5_000, "test");
        agent = new Agent(config, api, Stores.inMemory(), new CommandRouter(actions, ShellAllowlist.defaults(), null),
                () -> new JSONObject(), Collections::emptyList, clock, new Random(1), events);
        long delay = agent.step();
        JSONObject error = events.named("error").get(0);
        assertEquals("key_invalid", error.optString("code"));
        assertEquals(401, error.optInt("http_status"));
        assertThat(delay, greaterThanOrEqualTo(30_000L));
        assertTrue(!agent.state().isEnrolled());
    }

    // ---- push -------------------------------------------------------------------------------

    @Test
    public void a_sync_push_pulls_and_a_command_push_is_verified() {
        enrolled();
        mdm.heartbeatCommandLimit = 0;
        FakeMdm.Cmd a = mdm.queue("ping", null);
        int pulls = mdm.pulls;
        agent.onPush(Collections.singletonMap("kind", "sync"));
        agent.step();
        assertEquals(pulls + 1, mdm.pulls);
        assertThat(actions.calls(), contains("ping"));
        FakeMdm.Cmd b = mdm.queue("lock", null);
        Map<String, String> push = new java.util.HashMap<>();
        push.put("kind", "command");
        push.put("envelope", signed(b).toString());
        agent.onPush(push);
        agent.step();
        assertThat(actions.calls(), contains("ping", "lock"));
        assertEquals("succeeded", a.status);
    }

    @Test
    public void a_new_fcm_token_is_sent_in_a_heartbeat_at_once() {
        enrolled();
        int before = mdm.heartbeats.size();
        agent.onNewFcmToken("fcm-123");
        agent.step();
        assertEquals(before + 1, mdm.heartbeats.size());
        assertEquals("fcm-123", lastHeartbeatBody().optString("fcm_token"));
    }

    // ---- install_apk ------------------------------------------------------------------------

    @Test
    public void install_apk_downloads_checks_sha256_and_installs() {
        enrolled();
        byte[] apk = "PK\u0003\u0004 not really an apk but bytes".getBytes(StandardCharsets.UTF_8);
        mdm.apks.put("a1", apk);
        String sha = Sha256.hex(apk);
        FakeMdm.Cmd good = mdm.queue("install_apk", Json.obj("apk_id", "a1", "package", "com.example.kiosk",
                "version_code", 4, "sha256", sha, "size", apk.length));
        FakeMdm.Cmd bad = mdm.queue("install_apk", Json.obj("apk_id", "a1", "package", "com.example.kiosk",
                "version_code", 4, "sha256", Sha256.hex("other"), "size", apk.length));
        nextHeartbeat();
        assertThat(actions.calls(), contains("install_apk com.example.kiosk " + sha));
        assertEquals("succeeded", good.status);
        assertEquals("failed", bad.status);
    }

    @Test
    public void install_apk_interrupted_by_the_network_stays_queued_and_retries() {
        enrolled();
        byte[] apk = new byte[10_000];
        new Random(3).nextBytes(apk);
        mdm.apks.put("a2", apk);
        FakeMdm.Cmd c = mdm.queue("install_apk", Json.obj("apk_id", "a2", "package", "com.example.kiosk",
                "version_code", 5, "sha256", Sha256.hex(apk), "size", apk.length));
        mdm.failDownloads = 1;
        long delay = 0;
        clock.advanceS(34);
        delay = agent.step(); // verified, download refused (503): stays queued, backs off
        assertEquals("PENDING", "" + pendingState(c.id));
        JSONObject b = events.named("backoff").get(0);
        assertEquals("command_retry", b.optString("reason"));
        assertEquals(2, b.optLong("retry_after_s"));
        clock.advanceMs(delay);
        agent.step();
        assertEquals("succeeded", c.status);
        assertThat(actions.calls(), hasSize(1));
    }

    // ---- install_apk across restarts (the agent updating itself) ---------------------------

    /** What Android does to the agent's process when an install replaces its package. */
    private static final class ProcessKilled extends Error {
        private static final long serialVersionUID = 1L;
    }

    private FakeMdm.Cmd queueInstall(String apkId, byte[] apk, long versionCode) {
        mdm.apks.put(apkId, apk);
        return mdm.queue("install_apk", Json.obj("apk_id", apkId, "package", "dev.mdm.agent",
                "version_code", versionCode, "sha256", Sha256.hex(apk), "size", apk.length));
    }

    private static byte[] bytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Test
    public void an_update_of_the_agent_itself_kills_it_and_the_restart_reports_it_succeeded() throws Exception {
        File dir = tmp.newFolder();
        agent = newAgent(FileStores.open(dir), 1);
        enrolled();
        actions.installed.put("dev.mdm.agent", 1L);
        FakeMdm.Cmd c = queueInstall("self-2", bytes(5_000, 1), 2);
        actions.afterInstallLands = () -> {
            throw new ProcessKilled(); // before the installer answers, the old process is gone
        };
        clock.advanceS(34);
        try {
            agent.step();
            throw new AssertionError("the install should have ended the process");
        } catch (ProcessKilled expected) {
            // the process is dead
        }
        assertEquals("RUNNING", "" + FileStores.open(dir).commands.get(c.id).state);
        assertThat(mdm.resultsFor(c.id), empty());

        actions.afterInstallLands = null;
        events.clear();
        agent = newAgent(FileStores.open(dir), 2); // the new version: the same stores and package manager
        agent.step();
        assertEquals("succeeded", c.status);
        JSONObject posted = mdm.resultsFor(c.id).get(0);
        assertEquals("installed dev.mdm.agent versionCode 2 (package manager), confirmed after the agent restarted",
                posted.optString("output"));
        JSONObject reconciled = events.named("reconciled").get(0);
        assertEquals("succeeded", reconciled.optString("outcome"));
        assertEquals(1, reconciled.optInt("attempts"));
        assertThat(actions.calls(), hasSize(1)); // not installed a second time
        assertEquals(0, apkDir.list().length); // the APK the dead process left is gone
    }

    @Test
    public void an_install_killed_mid_download_runs_again_after_the_restart_resuming_the_download() throws Exception {
        File dir = tmp.newFolder();
        agent = newAgent(FileStores.open(dir), 1);
        enrolled();
        byte[] apk = bytes(10_000, 4);
        FakeMdm.Cmd c = queueInstall("kiosk-5", apk, 5);
        mdm.cutDownloadAfter = 4_000;
        nextHeartbeat(); // the first 4,000 bytes arrive, then the download breaks off
        assertThat(mdm.downloadRanges, contains(""));
        // The process dies at this point instead (killed mid-download): the record stays RUNNING.
        Stores killed = FileStores.open(dir);
        CommandRecord r = killed.commands.get(c.id);
        assertEquals(1, r.attempts);
        r.state = CommandRecord.State.RUNNING;
        killed.commands.put(r);

        events.clear();
        agent = newAgent(FileStores.open(dir), 2);
        agent.step();
        JSONObject reconciled = events.named("reconciled").get(0);
        assertEquals("retry", reconciled.optString("outcome"));
        assertEquals("succeeded", c.status);
        assertThat(mdm.downloadRanges, contains("", "bytes=4000-")); // resumed, not started over
        assertThat(actions.calls(), contains("install_apk dev.mdm.agent " + Sha256.hex(apk)));
        assertEquals("installed dev.mdm.agent versionCode 5 (package manager)", mdm.resultsFor(c.id).get(0).optString("output"));
    }

    @Test
    public void an_install_interrupted_by_restarts_until_its_attempts_run_out_fails_with_what_is_installed() throws Exception {
        File dir = tmp.newFolder();
        agent = newAgent(FileStores.open(dir), 1);
        enrolled();
        mdm.heartbeatCommandLimit = 0;
        actions.installed.put("dev.mdm.agent", 3L);
        FakeMdm.Cmd c = queueInstall("self-5", bytes(100, 5), 5);
        CommandRecord r = CommandRecord.pending(Command.parse(mdm.payload(c)), signed(c).toString());
        r.state = CommandRecord.State.RUNNING;
        r.attempts = 5; // AgentConfig.maxCommandAttempts
        FileStores.open(dir).commands.put(r);
        agent = newAgent(FileStores.open(dir), 2);
        agent.step();
        assertEquals("failed", c.status);
        assertEquals("interrupted by restarts during its download or install, attempts exhausted: "
                + "the package manager reports dev.mdm.agent versionCode 3, not versionCode 5",
                mdm.resultsFor(c.id).get(0).optString("error"));
        assertThat(actions.calls(), empty());
        assertEquals(c.seq, agent.state().lastSeq);
    }
}
