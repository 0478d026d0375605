package dev.mdm.agent.core.headless;

import static org.hamcrest.MatcherAssert.assertThat;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.not;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

import dev.mdm.agent.core.envelope.Command;
import dev.mdm.agent.core.exec.ApkFetcher;
import dev.mdm.agent.core.exec.CommandResult;
import dev.mdm.agent.core.exec.CommandRouter;
import dev.mdm.agent.core.exec.ShellAllowlist;
import dev.mdm.agent.core.policy.ItemStatus;
import dev.mdm.agent.core.policy.PolicyApplier;
import dev.mdm.agent.core.util.Json;

/** The simulated device refuses what an Android 14 Device Owner app is refused, and keeps what it may set. */
public class SimulatedPolicyTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private SimulatedDevice device(File stateDir, String... adbGrants) {
        return new SimulatedDevice(0, null, stateDir, SimulatedDevice.AGENT_PACKAGE, Collections.<String, Long>emptyMap(),
                (pkg, code) -> { }, new HashSet<>(Arrays.asList(adbGrants)));
    }

    private static CommandResult shell(SimulatedDevice d, String... argv) {
        // Through the router with an allowlist of every program used here: what the device does.
        CommandRouter router = new CommandRouter(d, ShellAllowlist.parse("getprop; id; pm; settings; cmd; am; dumpsys; input; su;"
                + " uname; df; uptime; cat; ls; ps"),
                ApkFetcher.downloading(null, new File("unused")));
        try {
            return router.execute(new Command("c", "d", 1, "shell", Json.obj("argv", Json.array(Arrays.asList(argv))), 0, 0));
        } catch (dev.mdm.agent.core.exec.RetryLaterException e) {
            throw new AssertionError(e);
        }
    }

    private static Map<String, ItemStatus> apply(SimulatedDevice d, JSONObject items, JSONObject previous) {
        CommandRouter router = new CommandRouter(d, ShellAllowlist.defaults(), ApkFetcher.downloading(null, new File("unused")));
        return new PolicyApplier(d.policy(), router).apply(items, previous);
    }

    private static JSONArray arr(Object... items) {
        return Json.array(Arrays.asList(items));
    }

    // ---- shell as the app's own user --------------------------------------------------------

    @Test
    public void shell_reads_work_as_the_apps_own_uid() {
        SimulatedDevice d = device(null);
        assertEquals("14", shell(d, "getprop", "ro.build.version.release").output);
        assertEquals("", shell(d, "getprop", "ro.serialno").output); // denied to untrusted_app
        assertThat(shell(d, "id").output, containsString("uid=10123(u0_a123)"));
        assertThat(shell(d, "pm", "list", "packages").output, containsString("package:com.example.kiosk"));
        assertEquals("Linux\n", shell(d, "uname").output);
        assertThat(shell(d, "uname", "-a").output, containsString(" aarch64 Toybox"));
        assertThat(shell(d, "df", "-h").output, containsString("/data"));
        assertThat(shell(d, "uptime").output, containsString("load average"));
        assertThat(shell(d, "cat", "/proc/meminfo").output, containsString("MemTotal:"));
    }

    @Test
    public void what_an_app_may_not_read_is_refused() {
        SimulatedDevice d = device(null);
        CommandResult get = shell(d, "settings", "get", "system", "screen_off_timeout");
        assertEquals("failed", get.status);
        assertThat(get.output, containsString("Package null does not belong to 10123"));
        assertEquals("failed", shell(d, "settings", "list", "global").status);
        CommandResult procUptime = shell(d, "cat", "/proc/uptime");
        assertEquals("failed", procUptime.status);
        assertThat(procUptime.output, containsString("Permission denied"));
        assertEquals("failed", shell(d, "cat", "/data/data/com.example.kiosk/shared_prefs/a.xml").status);
        assertEquals("failed", shell(d, "ls", "/data/data").status);
        assertThat(shell(d, "ps").output, not(containsString("system_server")));
        assertEquals("failed", shell(d, "uname", "-x").status);
    }

    @Test
    public void shell_writes_are_refused_as_android_refuses_them() {
        SimulatedDevice d = device(null);
        CommandResult put = shell(d, "settings", "put", "global", "stay_on_while_plugged_in", "7");
        assertEquals("failed", put.status);
        assertEquals(Integer.valueOf(255), put.exitCode);
        assertThat(put.output, containsString("requires:android.permission.WRITE_SECURE_SETTINGS"));
        assertEquals("0", d.policy().setting("global", "stay_on_while_plugged_in"));
        assertThat(shell(d, "cmd", "wifi", "connect-network", "Shop", "open").output,
                containsString("Uid 10123 does not have access to wifi commands"));
        assertThat(shell(d, "pm", "install", "/sdcard/x.apk").output, containsString("INSTALL_PACKAGES"));
        assertThat(shell(d, "pm", "grant", "com.example.kiosk", "android.permission.CAMERA").output,
                containsString("GRANT_RUNTIME_PERMISSIONS"));
        assertEquals("failed", shell(d, "input", "keyevent", "26").status);
        CommandResult su = shell(d, "su", "-c", "id");
        assertEquals("failed", su.status);
        assertThat(su.error, containsString("No such file or directory"));
    }

    @Test
    public void dumpsys_exits_0_with_a_permission_denial_and_the_agent_reports_it_failed() {
        CommandResult r = shell(device(null), "dumpsys", "battery");
        assertEquals("failed", r.status);
        assertEquals(Integer.valueOf(0), r.exitCode);
        assertThat(r.error, containsString("refused as the agent's own user: Permission Denial: can't dump battery"));
    }

    @Test
    public void am_start_opens_exported_activities_only() {
        SimulatedDevice d = device(null);
        assertEquals("succeeded", shell(d, "am", "start", "-a", "android.settings.SYSTEM_UPDATE_SETTINGS").status);
        assertEquals("succeeded", shell(d, "am", "start", "-n", "com.example.kiosk/.MainActivity").status);
        CommandResult hidden = shell(d, "am", "start", "-n", "com.android.settings/.SubSettings");
        assertEquals("failed", hidden.status);
        assertThat(hidden.output, containsString("not exported from uid"));
        assertThat(shell(d, "am", "force-stop", "com.example.kiosk").output, containsString("FORCE_STOP_PACKAGES"));
    }

    // ---- policy items -----------------------------------------------------------------------

    @Test
    public void a_lock_task_kiosk_shows_in_the_heartbeat_and_survives_a_restart() throws Exception {
        File state = tmp.newFolder();
        SimulatedDevice d = device(state);
        assertFalse(d.read().optBoolean("lock_task_active"));
        Map<String, ItemStatus> s = apply(d, Json.obj("kiosk", Json.obj("package", "com.example.kiosk", "lock_task", true,
                "relaunch", true, "status_bar", true)), null);
        assertEquals(ItemStatus.applied(), s.get("kiosk"));
        JSONObject hb = d.read();
        assertTrue(hb.optBoolean("lock_task_active"));
        assertEquals("com.example.kiosk", hb.optString("foreground_app"));
        assertEquals("14", hb.optString("os_version"));
        assertTrue(hb.isNull("pending_system_update"));
        assertFalse("a Device Owner cannot grant itself usage access", hb.optBoolean("usage_access"));
        assertFalse(hb.optBoolean("battery_optimization_exempt"));
        assertTrue(device(state).read().optBoolean("lock_task_active"));
    }

    @Test
    public void a_kiosk_of_a_missing_package_or_a_relaunch_without_usage_access_fails_with_the_reason() {
        SimulatedDevice d = device(null);
        ItemStatus missing = apply(d, Json.obj("kiosk", Json.obj("package", "com.example.absent", "lock_task", true)), null).get("kiosk");
        assertEquals("failed", missing.state);
        assertThat(missing.reason, containsString("not installed"));
        ItemStatus relaunch = apply(d, Json.obj("kiosk", Json.obj("package", "com.example.kiosk", "relaunch", true)), null).get("kiosk");
        assertEquals("failed", relaunch.state);
        assertThat(relaunch.reason, containsString("GET_USAGE_STATS"));
        SimulatedDevice granted = device(null, "usage_access");
        assertEquals(ItemStatus.applied(), apply(granted, Json.obj("kiosk", Json.obj("package", "com.example.kiosk", "relaunch", true)), null).get("kiosk"));
        assertTrue(granted.read().optBoolean("usage_access"));
    }

    @Test
    public void freeze_periods_follow_androids_rules() {
        SimulatedDevice d = device(null);
        JSONObject tooLong = Json.obj("system_update", Json.obj("type", "automatic",
                "freeze_periods", arr(Json.obj("start", "01-01", "end", "04-30"))));
        ItemStatus s = apply(d, tooLong, null).get("system_update");
        assertEquals("failed", s.state);
        assertThat(s.reason, containsString("too long"));
        JSONObject tooClose = Json.obj("system_update", Json.obj("type", "automatic", "freeze_periods",
                arr(Json.obj("start", "01-01", "end", "01-31"), Json.obj("start", "03-01", "end", "03-10"))));
        assertThat(apply(d, tooClose, null).get("system_update").reason, containsString("too close"));
        JSONObject ok = Json.obj("system_update", Json.obj("type", "windowed", "window_start_min", 60, "window_end_min", 180,
                "freeze_periods", arr(Json.obj("start", "11-20", "end", "01-05"), Json.obj("start", "06-01", "end", "06-30"))));
        assertEquals(ItemStatus.applied(), apply(d, ok, null).get("system_update"));
    }

    @Test
    public void only_settings_a_device_owner_may_write_are_written_and_the_rest_are_unsupported_by_name() {
        SimulatedDevice d = device(null);
        ItemStatus s = apply(d, Json.obj("settings", Json.obj("stay_on_while_plugged", true, "screen_off_timeout_s", 600,
                "adb_enabled", true)), null).get("settings");
        assertEquals(ItemStatus.unsupported("not settings a Device Owner can change: adb_enabled"), s);
        assertEquals("7", d.policy().setting("global", "stay_on_while_plugged_in"));
        assertEquals("600000", d.policy().setting("system", "screen_off_timeout"));
        assertNull(d.policy().setting("global", "adb_enabled"));
    }

    @Test
    public void every_key_the_server_may_send_is_applied() throws Exception {
        JSONObject contract = dev.mdm.agent.core.policy.DeviceOwnerSettingsTest.contract();
        JSONObject settings = new JSONObject();
        for (java.util.Iterator<String> it = contract.keys(); it.hasNext(); ) {
            String key = it.next();
            String type = contract.optJSONObject(key).optString("type");
            Json.put(settings, key, type.equals("int") ? contract.optJSONObject(key).optLong("max")
                    : type.equals("time_zone") ? "Europe/Paris" : !key.equals("auto_time_zone"));
        }
        SimulatedDevice d = device(null);
        assertEquals(settings.toString(), ItemStatus.applied(), apply(d, Json.obj("settings", settings), null).get("settings"));
        assertEquals("Europe/Paris", shell(d, "getprop", "persist.sys.timezone").output);
        assertEquals("0", d.policy().setting("global", "auto_time_zone"));
        assertEquals("1", d.policy().setting("global", "wifi_device_owner_configs_lockdown"));
        assertEquals("3", d.policy().setting("secure", "location_mode"));
        assertEquals("1", d.policy().setting("device_policy", "camera_disabled"));
        assertEquals("1", d.policy().setting("device_policy", "keyguard_disabled"));
        assertEquals("255", d.policy().setting("system", "screen_brightness"));
    }

    @Test
    public void a_fixed_time_zone_under_the_automatic_one_and_no_keyguard_under_a_pin_are_refused_as_android_refuses_them() {
        SimulatedDevice d = device(null);
        ItemStatus zone = apply(d, Json.obj("settings", Json.obj("time_zone", "Europe/Paris")), null).get("settings");
        assertEquals("failed", zone.state);
        assertThat(zone.reason, containsString("time_zone: setTimeZone refused: the automatic time zone is on"));
        assertEquals("Etc/UTC", shell(d, "getprop", "persist.sys.timezone").output);
        d.policy().setScreenLock("pin");
        ItemStatus keyguard = apply(d, Json.obj("settings", Json.obj("keyguard_disabled", true, "camera_disabled", true)), null)
                .get("settings");
        assertEquals("failed", keyguard.state);
        assertThat(keyguard.reason, containsString("keyguard_disabled: setKeyguardDisabled refused"));
        assertEquals("0", d.policy().setting("device_policy", "keyguard_disabled"));
        assertEquals("1", d.policy().setting("device_policy", "camera_disabled"));
    }

    @Test
    public void an_app_that_is_not_installed_or_is_hidden_does_not_launch() {
        SimulatedDevice d = device(null);
        CommandResult absent = launch(d, "com.example.absent", null);
        assertEquals("failed", absent.status);
        assertThat(absent.error, containsString("no launchable activity in com.example.absent"));
        assertThat(launch(d, "com.example.absent", ".Main").error, containsString("ActivityNotFoundException"));
        assertEquals("succeeded", launch(d, "com.android.chrome", null).status);
        apply(d, Json.obj("apps", Json.obj("blocked", arr("com.android.chrome"))), null);
        assertEquals("failed", launch(d, "com.android.chrome", null).status);
    }

    private static CommandResult launch(SimulatedDevice d, String pkg, String activity) {
        try {
            return d.launchApp(pkg, activity);
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    public void restrictions_are_android_names_and_those_dropped_are_cleared() {
        SimulatedDevice d = device(null);
        apply(d, Json.obj("restrictions", arr("no_factory_reset", "no_usb_file_transfer")), null);
        ItemStatus s = apply(d, Json.obj("restrictions", arr("no_factory_reset", "no_teleport")),
                Json.obj("restrictions", arr("no_factory_reset", "no_usb_file_transfer"))).get("restrictions");
        assertEquals("failed", s.state);
        assertThat(s.reason, containsString("no_teleport"));
        assertEquals(Arrays.asList("no_factory_reset"), Json.strings(d.policy().snapshot(), "restrictions"));
    }

    @Test
    public void wifi_passwords_never_reach_the_simulated_state_and_blocked_apps_exclude_the_agent() throws Exception {
        File state = tmp.newFolder();
        SimulatedDevice d = device(state);
        apply(d, Json.obj("wifi", arr(Json.obj("id", 1, "ssid", "Shop", "security", "wpa2", "password", "correct horse battery")),
                "apps", Json.obj("blocked", arr("com.android.chrome", SimulatedDevice.AGENT_PACKAGE))), null);
        String stored = new String(Files.readAllBytes(new File(state, "policy-state.json").toPath()), StandardCharsets.UTF_8);
        assertThat(stored, containsString("Shop"));
        assertThat(stored, not(containsString("correct horse")));
        assertTrue(d.policy().isHidden("com.android.chrome"));
        assertFalse(d.policy().isHidden(SimulatedDevice.AGENT_PACKAGE));
        Set<String> packages = d.packages();
        assertTrue(packages.contains("com.android.chrome"));
    }

    @Test
    public void the_blocked_item_reports_the_agents_own_package_as_refused() {
        SimulatedDevice d = device(null);
        ItemStatus s = apply(d, Json.obj("apps", Json.obj("blocked", arr(SimulatedDevice.AGENT_PACKAGE))), null).get("apps");
        assertEquals("failed", s.state);
        assertThat(s.reason, containsString("cannot hide itself"));
    }
}
