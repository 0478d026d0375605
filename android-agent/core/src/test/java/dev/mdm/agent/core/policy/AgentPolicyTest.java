package dev.mdm.agent.core.policy;

import static org.hamcrest.MatcherAssert.assertThat;
import static org.hamcrest.Matchers.contains;
import static org.hamcrest.Matchers.empty;
import static org.hamcrest.Matchers.hasItem;
import static org.hamcrest.Matchers.not;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

import dev.mdm.agent.core.Agent;
import dev.mdm.agent.core.AgentConfig;
import dev.mdm.agent.core.exec.ApkFetcher;
import dev.mdm.agent.core.exec.CommandRouter;
import dev.mdm.agent.core.exec.ShellAllowlist;
import dev.mdm.agent.core.net.HttpDeviceApi;
import dev.mdm.agent.core.store.FileStores;
import dev.mdm.agent.core.store.Stores;
import dev.mdm.agent.core.support.FakeClock;
import dev.mdm.agent.core.support.FakeMdm;
import dev.mdm.agent.core.support.RecordingActions;
import dev.mdm.agent.core.support.RecordingEvents;
import dev.mdm.agent.core.support.RecordingPolicyActions;
import dev.mdm.agent.core.util.Json;
import dev.mdm.agent.core.util.Sha256;

/** The v1.1 policy channel end to end against {@link FakeMdm}: fetch, verify, keep, apply, report. */
public class AgentPolicyTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private FakeMdm mdm;
    private FakeClock clock;
    private RecordingEvents events;
    private RecordingActions actions;
    private RecordingPolicyActions policyActions;
    private File apkDir;
    private File stateDir;
    private Agent agent;

    @Before
    public void setUp() throws Exception {
        mdm = new FakeMdm();
        clock = new FakeClock();
        events = new RecordingEvents();
        actions = new RecordingActions();
        policyActions = new RecordingPolicyActions();
        apkDir = tmp.newFolder();
        stateDir = tmp.newFolder();
        agent = newAgent();
    }

    @After
    public void tearDown() {
        mdm.close();
    }

    /** A fresh process on the same state directory. */
    private Agent newAgent() {
        AgentConfig config = new AgentConfig();
        config.enrollKey = FakeMdm.ENROLL_KEY;
        config.hardwareId = "hw-1";
        HttpDeviceApi api = new HttpDeviceApi(mdm.url(), 2_000, 5_000, "test");
        Stores stores = FileStores.open(stateDir);
        CommandRouter router = new CommandRouter(actions, ShellAllowlist.defaults(), ApkFetcher.downloading(api, apkDir));
        return new Agent(config, api, stores, router, policyActions, () -> Json.obj("battery_pct", 80),
                ArrayList::new, clock, new Random(1), events);
    }

    private void nextHeartbeat() {
        clock.advanceS(34);
        agent.step();
    }

    private JSONObject lastHeartbeat() {
        return mdm.heartbeats.get(mdm.heartbeats.size() - 1);
    }

    private static JSONArray arr(Object... items) {
        return Json.array(Arrays.asList(items));
    }

    private JSONObject itemsOf(JSONObject status) {
        assertNotNull("no policy status posted; events:\n" + events, status);
        return status.optJSONObject("items");
    }

    @Test
    public void it_fetches_at_start_reports_version_0_and_sends_policy_version_in_heartbeats() {
        agent.step();
        assertEquals(1, mdm.policyFetches);
        JSONObject status = mdm.lastPolicyStatus();
        assertEquals(0, status.optLong("version", -1));
        assertEquals(0, itemsOf(status).length());
        nextHeartbeat();
        assertEquals(0, lastHeartbeat().optLong("policy_version", -1));
        assertEquals(1, mdm.policyFetches); // same version: no fetch at each heartbeat
        assertThat(mdm.policyStatuses(), org.hamcrest.Matchers.hasSize(1)); // nothing changed: no new report
    }

    @Test
    public void a_new_version_in_the_heartbeat_answer_is_fetched_applied_item_by_item_and_reported() {
        agent.step();
        JSONObject items = Json.obj(
                "kiosk", Json.obj("package", "com.example.kiosk", "lock_task", true, "relaunch", true, "status_bar", false),
                "system_update", Json.obj("type", "windowed", "window_start_min", 120, "window_end_min", 240,
                        "freeze_periods", arr(Json.obj("start", "12-01", "end", "12-31"))),
                "settings", Json.obj("stay_on_while_plugged", true, "screen_off_timeout_s", 600),
                "restrictions", arr("no_factory_reset", "no_debugging_features"),
                "wifi", arr(Json.obj("id", 4, "ssid", "Shop", "security", "wpa2", "password", "hunter2hunter2", "hidden", false)),
                "apps", Json.obj("blocked", arr("com.android.chrome")),
                "teleport", Json.obj("to", "mars"));
        mdm.assignPolicy(mdm.device(), 7, items);
        nextHeartbeat();
        assertEquals(2, mdm.policyFetches);
        assertThat(policyActions.calls(), contains(
                "restrictions [no_factory_reset, no_debugging_features] was null",
                "settings {\"stay_on_while_plugged\":true,\"screen_off_timeout_s\":600}",
                "system_update windowed 120-240 [12-01..12-31]",
                "wifi [4:WifiConfig(Shop, wpa2, hidden=false)] was null",
                "blocked [com.android.chrome] was null",
                "kiosk com.example.kiosk lock_task=true relaunch=true status_bar=false"));
        JSONObject status = mdm.lastPolicyStatus();
        assertEquals(7, status.optLong("version"));
        JSONObject s = itemsOf(status);
        for (String item : Arrays.asList("kiosk", "system_update", "settings", "restrictions", "wifi", "apps")) {
            assertEquals(item, "applied", s.optJSONObject(item).optString("state"));
        }
        assertEquals("unsupported", s.optJSONObject("teleport").optString("state"));
        nextHeartbeat();
        assertEquals(7, lastHeartbeat().optLong("policy_version"));
        assertFalse("a secret reached the events", events.toString().contains("hunter2"));
    }

    @Test
    public void what_the_previous_version_applied_is_handed_over_so_it_can_be_undone() {
        agent.step();
        mdm.assignPolicy(mdm.device(), 3, Json.obj("restrictions", arr("no_factory_reset", "no_usb_file_transfer"),
                "wifi", arr(Json.obj("id", "a", "ssid", "Old", "security", "open"))));
        nextHeartbeat();
        policyActions.clear();
        mdm.assignPolicy(mdm.device(), 4, Json.obj("restrictions", arr("no_factory_reset"), "wifi", new JSONArray()));
        nextHeartbeat();
        assertThat(policyActions.calls(), contains("restrictions [no_factory_reset] was [no_factory_reset, no_usb_file_transfer]",
                "wifi [] was [a]"));
    }

    @Test
    public void a_value_of_the_wrong_shape_fails_that_item_alone() {
        agent.step();
        mdm.assignPolicy(mdm.device(), 2, Json.obj("kiosk", Json.obj("package", "not a package"),
                "system_update", Json.obj("type", "postpone", "freeze_periods", arr(Json.obj("start", "02-29", "end", "03-10"))),
                "restrictions", arr("no_factory_reset")));
        nextHeartbeat();
        JSONObject s = itemsOf(mdm.lastPolicyStatus());
        assertEquals("failed", s.optJSONObject("kiosk").optString("state"));
        assertTrue(s.optJSONObject("kiosk").optString("reason").contains("kiosk.package"));
        assertEquals("failed", s.optJSONObject("system_update").optString("state"));
        assertEquals("applied", s.optJSONObject("restrictions").optString("state"));
    }

    @Test
    public void a_policy_whose_signature_fails_is_counted_verified_again_after_a_heartbeat_and_never_applied_unverified() {
        agent.step();
        mdm.assignPolicy(mdm.device(), 5, Json.obj("restrictions", arr("no_factory_reset")));
        mdm.tamperPolicies = 1;
        nextHeartbeat();
        assertThat(policyActions.calls(), empty());
        assertEquals("bad_signature", events.named("policy_bad").get(0).optString("reason"));
        // The refresh heartbeat carries the count; the policy is fetched and verified once more.
        agent.step();
        assertThat(mdm.heartbeats.stream().map(h -> h.optLong("bad_envelopes")).collect(java.util.stream.Collectors.toList()),
                hasItem(1L));
        assertThat(policyActions.calls(), contains("restrictions [no_factory_reset] was null"));
        assertEquals(5, mdm.lastPolicyStatus().optLong("version"));
    }

    @Test
    public void a_policy_that_fails_twice_is_dropped_and_the_old_version_stays() {
        agent.step();
        mdm.assignPolicy(mdm.device(), 5, Json.obj("restrictions", arr("no_factory_reset")));
        mdm.tamperPolicies = 2;
        nextHeartbeat();
        agent.step();
        assertThat(policyActions.calls(), empty());
        assertEquals("dropped", events.named("policy_bad").get(1).optString("action"));
        assertEquals(0, mdm.lastPolicyStatus().optLong("version", -1));
        nextHeartbeat();
        assertEquals(0, lastHeartbeat().optLong("policy_version", -1));
    }

    @Test
    public void a_policy_signed_for_another_device_is_not_applied_and_is_reported() {
        agent.step();
        mdm.assignPolicy(mdm.device(), 9, Json.obj("restrictions", arr("no_factory_reset")));
        mdm.policyDeviceIdOverride = "3f2b8c1e-6a4d-4e7b-9c2a-1d5e8f0a7b3c";
        nextHeartbeat();
        assertThat(policyActions.calls(), empty());
        JSONObject status = mdm.lastPolicyStatus();
        assertEquals(9, status.optLong("version"));
        JSONObject r = itemsOf(status).optJSONObject("restrictions");
        assertEquals("failed", r.optString("state"));
        assertTrue(r.optString("reason").startsWith("wrong_device"));
        nextHeartbeat();
        assertEquals(0, lastHeartbeat().optLong("policy_version", -1));
    }

    @Test
    public void the_shell_allowlist_is_exactly_the_policys_and_survives_a_restart_without_the_server() {
        agent.step();
        mdm.queue("shell", Json.obj("argv", arr("getprop", "ro.build.version.release")));
        nextHeartbeat();
        assertThat(actions.calls(), hasItem("shell getprop ro.build.version.release")); // built-in list
        mdm.assignPolicy(mdm.device(), 2, Json.obj("shell_allowlist", arr(arr("dumpsys", "battery"))));
        nextHeartbeat();
        assertEquals("applied", itemsOf(mdm.lastPolicyStatus()).optJSONObject("shell_allowlist").optString("state"));
        FakeMdm.Cmd refused = mdm.queue("shell", Json.obj("argv", arr("getprop", "ro.serialno")));
        FakeMdm.Cmd allowed = mdm.queue("shell", Json.obj("argv", arr("dumpsys", "battery")));
        nextHeartbeat();
        assertEquals("not_allowed", mdm.resultsFor(refused.id).get(0).optString("reason"));
        assertEquals("succeeded", mdm.resultsFor(allowed.id).get(0).optString("status"));

        agent.stop();
        mdm.tamperPolicies = 1000; // the server cannot vouch for anything now: the stored policy rules
        agent = newAgent();
        FakeMdm.Cmd afterRestart = mdm.queue("shell", Json.obj("argv", arr("getprop", "ro.serialno")));
        for (int i = 0; i < 5 && mdm.resultsFor(afterRestart.id).isEmpty(); i++) {
            agent.step(); // each bad policy answer asks for a heartbeat first
        }
        assertEquals("not_allowed", mdm.resultsFor(afterRestart.id).get(0).optString("reason"));
        assertThat(policyActions.calls(), empty());
    }

    @Test
    public void the_stored_policy_is_applied_again_at_every_start() {
        agent.step();
        mdm.assignPolicy(mdm.device(), 2, Json.obj("kiosk", Json.obj("package", "com.example.kiosk", "lock_task", true)));
        nextHeartbeat();
        policyActions.clear();
        agent.stop();
        agent = newAgent();
        agent.step();
        assertThat(policyActions.calls(), contains("kiosk com.example.kiosk lock_task=true relaunch=false status_bar=false was com.example.kiosk"));
        assertEquals(2, lastHeartbeat().optLong("policy_version"));
    }

    @Test
    public void required_apps_install_through_the_download_path_and_are_not_fetched_again_once_installed() throws Exception {
        byte[] apk = "PK-required-app".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        mdm.apks.put("41", apk);
        agent.step();
        mdm.assignPolicy(mdm.device(), 3, Json.obj("apps", Json.obj("required", arr(Json.obj("package", "com.example.pos",
                "apk_id", "41", "version_code", 12, "sha256", Sha256.hex(apk), "size", apk.length)))));
        nextHeartbeat();
        assertThat(actions.calls(), hasItem("install_apk com.example.pos " + Sha256.hex(apk)));
        assertEquals("applied", itemsOf(mdm.lastPolicyStatus()).optJSONObject("apps").optString("state"));
        int downloads = mdm.downloadRanges.size();
        agent.stop();
        agent = newAgent();
        agent.step();
        assertEquals(downloads, mdm.downloadRanges.size());
    }

    @Test
    public void a_required_app_whose_download_is_refused_for_now_is_pending_and_tried_again() throws Exception {
        byte[] apk = "PK-later".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        mdm.apks.put("42", apk);
        agent.step();
        mdm.failDownloads = 1;
        mdm.assignPolicy(mdm.device(), 3, Json.obj("apps", Json.obj("required", arr(Json.obj("package", "com.example.pos",
                "apk_id", "42", "version_code", 2, "sha256", Sha256.hex(apk), "size", apk.length)))));
        nextHeartbeat();
        assertEquals("pending", itemsOf(mdm.lastPolicyStatus()).optJSONObject("apps").optString("state"));
        nextHeartbeat();
        assertEquals("applied", itemsOf(mdm.lastPolicyStatus()).optJSONObject("apps").optString("state"));
    }

    @Test
    public void a_sync_push_fetches_the_policy_at_once() {
        agent.step();
        mdm.assignPolicy(mdm.device(), 6, Json.obj("restrictions", arr("no_factory_reset")));
        agent.onPush(Collections.singletonMap("kind", "sync"));
        agent.step();
        assertEquals(6, mdm.lastPolicyStatus().optLong("version"));
    }

    @Test
    public void a_v1_server_without_the_policy_channel_does_not_stop_commands() {
        mdm.policyChannel = false;
        agent.step();
        assertThat(events.names(), hasItem("policy_unavailable"));
        FakeMdm.Cmd ping = mdm.queue("ping", null);
        nextHeartbeat();
        assertEquals("succeeded", mdm.resultsFor(ping.id).get(0).optString("status"));
        assertThat(events.names(), not(hasItem("backoff")));
    }

    @Test
    public void a_status_report_lost_to_the_network_is_posted_later() {
        agent.step();
        mdm.assignPolicy(mdm.device(), 8, Json.obj("restrictions", arr("no_factory_reset")));
        mdm.failPolicyStatus = 2;
        nextHeartbeat(); // fetched and applied; the report meets a 503
        assertThat(events.names(), hasItem("backoff"));
        for (int i = 0; i < 10 && (mdm.lastPolicyStatus() == null || mdm.lastPolicyStatus().optLong("version") != 8); i++) {
            clock.advanceS(5);
            agent.step();
        }
        assertEquals(8, mdm.lastPolicyStatus().optLong("version"));
        List<String> calls = policyActions.calls();
        assertEquals("applied once, however often the report is retried", 1, calls.size());
    }
}
