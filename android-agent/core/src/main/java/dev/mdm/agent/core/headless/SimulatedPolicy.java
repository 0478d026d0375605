package dev.mdm.agent.core.headless;

import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import org.json.JSONObject;

import dev.mdm.agent.core.policy.DeviceOwnerSettings;
import dev.mdm.agent.core.policy.ItemStatus;
import dev.mdm.agent.core.policy.KioskSpec;
import dev.mdm.agent.core.policy.PolicyActions;
import dev.mdm.agent.core.policy.SystemUpdateSpec;
import dev.mdm.agent.core.policy.UserRestrictions;
import dev.mdm.agent.core.policy.WifiNetwork;
import dev.mdm.agent.core.store.JsonFile;
import dev.mdm.agent.core.util.Json;

/**
 * The simulated device's Device Owner state (policy-state.json in the state directory), changed
 * only as Android 14 lets a Device Owner change it: lock task and the persistent HOME activity
 * for an installed package, the system update policy with Android's freeze-period rules (at most
 * 90 days each, at least 60 days apart), exactly the settings keys of DeviceOwnerSettings (the
 * server's set; any other is unsupported) with Android's refusals (no fixed time zone while the
 * automatic one is on, no keyguard off while a PIN is set), only known user restrictions, its own Wi-Fi networks, hidden apps except itself. Usage access
 * and the battery-optimisation exemption are app-ops and allowlists a Device Owner cannot grant
 * itself: they hold only when adb granted them (--adb-grants), as on a device.
 */
final class SimulatedPolicy implements PolicyActions {
    static final int MAX_FREEZE_DAYS = 90;
    static final int MIN_FREEZE_GAP_DAYS = 60;
    private static final int[] DAYS_BEFORE_MONTH = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};

    interface Packages {
        boolean isInstalled(String packageName);

        void launched(String packageName);

        String ownPackage();
    }

    private final Packages packages;
    private final JsonFile file;
    private JSONObject state;

    SimulatedPolicy(Packages packages, File stateDir, Set<String> adbGrants) {
        this.packages = packages;
        this.file = stateDir == null ? null : new JsonFile(new File(stateDir, "policy-state.json"));
        JSONObject stored = file == null ? null : file.read();
        state = stored != null ? stored : Json.obj("lock_task_active", false,
                "global", Json.obj("stay_on_while_plugged_in", "0", "auto_time", "1", "auto_time_zone", "1", "data_roaming", "0",
                        "wifi_device_owner_configs_lockdown", "0"),
                "system", Json.obj("screen_off_timeout", "60000", "screen_brightness", "128", "screen_brightness_mode", "1"),
                "secure", Json.obj("location_mode", "3"),
                "device_policy", Json.obj("camera_disabled", "0", "screen_capture_disabled", "0", "keyguard_disabled", "0"),
                "time_zone", "Etc/UTC", "screen_lock", "none",
                "restrictions", new ArrayList<String>(), "wifi", new JSONObject(), "hidden", new ArrayList<String>());
        for (String ns : new String[] {"global", "system", "secure", "device_policy"}) {
            if (state.optJSONObject(ns) == null) { // a state file from an older agent
                Json.put(state, ns, new JSONObject());
            }
        }
        Json.put(state, "usage_access", adbGrants.contains("usage_access"));
        Json.put(state, "battery_optimization_exempt", adbGrants.contains("battery_optimization"));
        persist();
    }

    private void persist() {
        if (file != null) {
            file.write(state);
        }
    }

    synchronized boolean lockTaskActive() {
        return Json.bool(state, "lock_task_active", false);
    }

    synchronized boolean usageAccess() {
        return Json.bool(state, "usage_access", false);
    }

    synchronized boolean batteryOptimizationExempt() {
        return Json.bool(state, "battery_optimization_exempt", false);
    }

    synchronized String setting(String namespace, String key) {
        JSONObject ns = state.optJSONObject(namespace);
        return ns == null ? null : Json.string(ns, key);
    }

    synchronized boolean isHidden(String packageName) {
        List<String> hidden = Json.strings(state, "hidden");
        return hidden != null && hidden.contains(packageName);
    }

    synchronized JSONObject snapshot() {
        return Json.parseObjectOrNull(state.toString());
    }

    @Override
    public synchronized ItemStatus applyKiosk(KioskSpec k, KioskSpec previous) {
        if (!packages.isInstalled(k.packageName)) {
            return ItemStatus.failed(k.packageName + " is not installed");
        }
        if (k.relaunch && !k.lockTask && !usageAccess()) {
            // Without lock task the agent must watch the foreground app, which needs usage access.
            return ItemStatus.failed("relaunch without lock_task needs usage access, which a Device Owner cannot grant"
                    + " itself: adb shell appops set " + packages.ownPackage() + " GET_USAGE_STATS allow");
        }
        String activity = k.activity == null ? ".MainActivity" : k.activity;
        List<String> lockTaskPackages = new ArrayList<>();
        if (k.lockTask) {
            lockTaskPackages.add(k.packageName);
            lockTaskPackages.add(packages.ownPackage());
        }
        Json.put(state, "lock_task_packages", lockTaskPackages);
        Json.put(state, "lock_task_features", k.statusBar ? "SYSTEM_INFO|NOTIFICATIONS" : "NONE");
        Json.put(state, "persistent_home", k.packageName + "/" + activity);
        Json.put(state, "relaunch", k.relaunch);
        Json.put(state, "lock_task_active", k.lockTask);
        persist();
        packages.launched(k.packageName);
        return ItemStatus.applied();
    }

    @Override
    public synchronized ItemStatus applySystemUpdate(SystemUpdateSpec s) {
        String problem = freezeProblem(s.freezePeriods);
        if (problem != null) {
            return ItemStatus.failed("SystemUpdatePolicy.ValidationFailedException: " + problem);
        }
        List<String> periods = new ArrayList<>();
        for (SystemUpdateSpec.FreezePeriod p : s.freezePeriods) {
            periods.add(p.toString());
        }
        Json.put(state, "system_update", Json.obj("type", s.type, "window_start_min", s.windowStartMin,
                "window_end_min", s.windowEndMin, "freeze_periods", periods));
        persist();
        return ItemStatus.applied();
    }

    /** SystemUpdatePolicy.validateFreezePeriods: each at most 90 days, at least 60 days between them. */
    static String freezeProblem(List<SystemUpdateSpec.FreezePeriod> periods) {
        int n = periods.size();
        int[][] spans = new int[n][];
        for (int i = 0; i < n; i++) {
            SystemUpdateSpec.FreezePeriod p = periods.get(i);
            int start = DAYS_BEFORE_MONTH[p.startMonth - 1] + p.startDay;
            int end = DAYS_BEFORE_MONTH[p.endMonth - 1] + p.endDay;
            int length = (end >= start ? end - start : end + 365 - start) + 1;
            if (length > MAX_FREEZE_DAYS) {
                return "Freeze period " + p + " is too long: " + length + " days";
            }
            spans[i] = new int[] {start, start + length - 1};
        }
        java.util.Arrays.sort(spans, (a, b) -> Integer.compare(a[0], b[0]));
        for (int i = 0; i < n; i++) {
            int[] cur = spans[i];
            int[] next = i + 1 < n ? spans[i + 1] : new int[] {spans[0][0] + 365, 0};
            if (n > 1 && next[0] - cur[1] - 1 < MIN_FREEZE_GAP_DAYS) {
                return "Freeze periods are too close together: " + (next[0] - cur[1] - 1) + " days apart";
            }
        }
        return null;
    }

    /** The time zone setTimeZone set (persist.sys.timezone), Etc/UTC out of the box. */
    synchronized String timeZone() {
        return Json.string(state, "time_zone");
    }

    /** What the user set as screen lock: "none" (a provisioned kiosk) or "pin" (setKeyguardDisabled refuses). */
    synchronized void setScreenLock(String lock) {
        Json.put(state, "screen_lock", lock);
        persist();
    }

    @Override
    public synchronized ItemStatus applySettings(JSONObject settings) {
        DeviceOwnerSettings.Plan plan = DeviceOwnerSettings.plan(settings);
        for (DeviceOwnerSettings.Resolved r : plan.settings) {
            String refused = write(r);
            if (refused != null) {
                plan.refused.put(r.policyKey, refused);
            }
        }
        persist();
        return plan.statusWhenWritten();
    }

    /** One DevicePolicyManager call's effect; null when done, else why Android did nothing. */
    private String write(DeviceOwnerSettings.Resolved r) {
        switch (r.target) {
            case SYSTEM:
                Json.put(state.optJSONObject("system"), r.androidKey, r.value);
                return null;
            case TIME_ZONE:
                // DevicePolicyManagerService.setTimeZone returns false while auto_time_zone is 1.
                if ("1".equals(setting("global", "auto_time_zone"))) {
                    return "setTimeZone refused: the automatic time zone is on (set auto_time_zone to false)";
                }
                Json.put(state, "time_zone", r.value);
                return null;
            case LOCATION:
                Json.put(state.optJSONObject("secure"), r.androidKey, r.value);
                return null;
            case KEYGUARD:
                // setKeyguardDisabled(true) returns false while a secure lock is set (LockPatternUtils.isSecure).
                if (r.on() && !"none".equals(Json.string(state, "screen_lock"))) {
                    return "setKeyguardDisabled refused: a secure screen lock (PIN, pattern or password) is set";
                }
                Json.put(state.optJSONObject("device_policy"), r.androidKey, r.value);
                return null;
            case CAMERA:
            case SCREEN_CAPTURE:
                Json.put(state.optJSONObject("device_policy"), r.androidKey, r.value);
                return null;
            default: // GLOBAL, AUTO_TIME, AUTO_TIME_ZONE, WIFI_LOCKDOWN: Settings.Global keys
                Json.put(state.optJSONObject("global"), r.androidKey, r.value);
                return null;
        }
    }

    @Override
    public synchronized ItemStatus applyRestrictions(List<String> wanted, List<String> previous) {
        List<String> unknown = new ArrayList<>();
        Set<String> active = new TreeSet<>(strings("restrictions"));
        if (previous != null) {
            active.removeAll(previous);
        }
        for (String r : wanted) {
            if (UserRestrictions.KNOWN.contains(r)) {
                active.add(r);
            } else {
                unknown.add(r);
            }
        }
        Json.put(state, "restrictions", new ArrayList<>(active));
        persist();
        return unknown.isEmpty() ? ItemStatus.applied() : ItemStatus.failed("not Android user restrictions: " + unknown);
    }

    @Override
    public synchronized ItemStatus applyWifi(List<WifiNetwork> wanted, List<String> previousIds) {
        JSONObject wifi = state.optJSONObject("wifi");
        if (previousIds != null) {
            for (String id : previousIds) {
                wifi.remove(id);
            }
        }
        for (WifiNetwork n : wanted) {
            // The passphrase is the Wi-Fi stack's to keep; the simulated state never holds it.
            Json.put(wifi, n.id, Json.obj("ssid", n.config.ssid, "security", n.config.security, "hidden", n.config.hidden));
        }
        persist();
        return ItemStatus.applied();
    }

    @Override
    public synchronized ItemStatus applyBlockedApps(List<String> blocked, List<String> previous) {
        Set<String> hidden = new TreeSet<>(strings("hidden"));
        if (previous != null) {
            hidden.removeAll(previous);
        }
        List<String> refused = new ArrayList<>();
        for (String pkg : blocked) {
            if (pkg.equals(packages.ownPackage())) {
                refused.add(pkg + " (the Device Owner cannot hide itself)");
            } else if (packages.isInstalled(pkg)) {
                hidden.add(pkg);
            } // not installed: nothing to hide; hidden once it appears and the policy is applied again
        }
        Json.put(state, "hidden", new ArrayList<>(hidden));
        persist();
        return refused.isEmpty() ? ItemStatus.applied() : ItemStatus.failed("setApplicationHidden refused: " + refused);
    }

    private List<String> strings(String key) {
        List<String> out = Json.strings(state, key);
        return out == null ? new ArrayList<>() : out;
    }
}
