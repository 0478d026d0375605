package dev.mdm.agent.core.headless;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;

import org.json.JSONObject;

import dev.mdm.agent.core.exec.ApkSpec;
import dev.mdm.agent.core.exec.CommandResult;
import dev.mdm.agent.core.exec.DeviceActions;
import dev.mdm.agent.core.exec.WifiConfig;
import dev.mdm.agent.core.store.JsonFile;
import dev.mdm.agent.core.telemetry.AppInfo;
import dev.mdm.agent.core.telemetry.InventorySource;
import dev.mdm.agent.core.telemetry.TelemetrySource;
import dev.mdm.agent.core.util.Json;

/**
 * A pretend Android device for the headless runner: every action succeeds after a short latency
 * (except the type named by --fail-type, which fails), and the telemetry is plausible and slowly
 * changing. Its package manager is a map {package: versionCode}, kept in the state directory
 * (packages.json) so it survives a restart, and it behaves as Android 14 does for a Device
 * Owner on a user build:
 * <ul>
 * <li>an install of a lower version code than the installed one is refused
 * (INSTALL_FAILED_VERSION_DOWNGRADE): PackageInstallerService drops INSTALL_ALLOW_DOWNGRADE for
 * callers that are not system apps, and a non-debuggable app on a user build cannot downgrade;</li>
 * <li>an install of the agent's own package replaces it and kills the process (no result is
 * posted; the agent confirms the install from the package manager after its restart);</li>
 * <li>the Device Owner's own package cannot be uninstalled (DELETE_FAILED_DEVICE_POLICY_MANAGER).</li>
 * </ul>
 * The inventory is the map. Shell commands run as the app's own uid ({@link SimulatedShell}), and
 * policy items change only what a Device Owner may ({@link SimulatedPolicy}); the heartbeat
 * reports the v1.1 fields from that state.
 */
final class SimulatedDevice implements DeviceActions, TelemetrySource, InventorySource, SimulatedShell.Device,
        SimulatedPolicy.Packages {
    static final String OS_VERSION = "14";
    static final String SECURITY_PATCH = "2024-06-05";
    /** The app's applicationId (android-agent/app/build.gradle). */
    static final String AGENT_PACKAGE = "dev.mdm.agent";
    /** PackageInstaller.STATUS_FAILURE_INVALID, what Android maps INSTALL_FAILED_VERSION_DOWNGRADE to. */
    static final int STATUS_FAILURE_INVALID = 4;
    /** PackageInstaller.STATUS_FAILURE. */
    static final int STATUS_FAILURE = 1;
    private static final Set<String> SYSTEM = Collections.unmodifiableSet(new HashSet<>(Arrays.asList(
            "com.android.settings", "com.android.chrome")));

    /** What Android does to the process of a package it replaces; the runner halts. */
    interface Killer {
        void packageReplaced(String packageName, long versionCode);
    }

    private final long latencyMs;
    private final String failType;
    private final String ownPackage;
    private final JsonFile packagesFile;
    private final Killer killer;
    private final long startedMs = System.currentTimeMillis();
    private final Map<String, Long> packages = new LinkedHashMap<>();
    private String foreground = "com.example.kiosk";
    private final SimulatedShell shell = new SimulatedShell(this);
    private final SimulatedPolicy policy;

    /**
     * stateDir null: nothing persists. installed seeds the package manager only when the state
     * directory holds none yet (a restart keeps what was installed, as a device does).
     */
    SimulatedDevice(long latencyMs, String failType, File stateDir, String ownPackage, Map<String, Long> installed,
            Killer killer) {
        this(latencyMs, failType, stateDir, ownPackage, installed, killer, Collections.<String>emptySet());
    }

    /** adbGrants: what adb granted the agent at provisioning (usage_access, battery_optimization). */
    SimulatedDevice(long latencyMs, String failType, File stateDir, String ownPackage, Map<String, Long> installed,
            Killer killer, Set<String> adbGrants) {
        this.latencyMs = latencyMs;
        this.failType = failType;
        this.ownPackage = ownPackage;
        this.killer = killer;
        this.packagesFile = stateDir == null ? null : new JsonFile(new File(stateDir, "packages.json"));
        JSONObject stored = packagesFile == null ? null : packagesFile.read();
        if (stored != null) {
            JSONObject map = stored.optJSONObject("packages");
            for (Iterator<String> it = map != null ? map.keys() : Collections.<String>emptyIterator(); it.hasNext(); ) {
                String pkg = it.next();
                Long code = Json.integer(map, pkg);
                if (code != null) {
                    packages.put(pkg, code);
                }
            }
        } else {
            packages.put("com.android.settings", 34L);
            packages.put("com.android.chrome", 609914433L);
            packages.put("com.example.kiosk", 1L);
            packages.put(ownPackage, 1L);
            packages.putAll(installed);
            persist();
        }
        policy = new SimulatedPolicy(this, stateDir, adbGrants);
    }

    SimulatedPolicy policy() {
        return policy;
    }

    // ---- what the shell and the policy see of the device ------------------------------------

    @Override
    public synchronized boolean isInstalled(String packageName) {
        return packages.containsKey(packageName);
    }

    @Override
    public synchronized Set<String> packages() {
        return new java.util.TreeSet<>(packages.keySet());
    }

    @Override
    public Map<String, String> props() {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("ro.build.version.release", OS_VERSION);
        p.put("ro.build.version.sdk", "34");
        p.put("ro.build.version.security_patch", SECURITY_PATCH);
        p.put("ro.build.type", "user");
        p.put("ro.product.model", "Headless Agent");
        p.put("ro.product.manufacturer", "mdm");
        p.put("persist.sys.timezone", policy.timeZone()); // what setTimeZone changes
        return p;
    }

    @Override
    public String ownPackage() {
        return ownPackage;
    }

    @Override
    public synchronized void launched(String packageName) {
        foreground = packageName;
    }

    private void persist() {
        if (packagesFile != null) {
            JSONObject map = new JSONObject();
            for (Map.Entry<String, Long> e : packages.entrySet()) {
                Json.put(map, e.getKey(), e.getValue());
            }
            packagesFile.write(Json.obj("packages", map));
        }
    }

    private CommandResult simulate(String type, String output) throws InterruptedException {
        Thread.sleep(latencyMs);
        if (type.equals(failType)) {
            return CommandResult.failed(1, null, "simulated failure of " + type);
        }
        return CommandResult.succeeded(0, output);
    }

    /** As AndroidActions reports a PackageInstaller failure: status, its message, and what failed. */
    private static CommandResult installerFailure(String what, int status, String message) {
        return CommandResult.failed(status, message, what + " failed (status " + status + "): " + message);
    }

    @Override
    public CommandResult ping() throws InterruptedException {
        return simulate("ping", "pong");
    }

    /** As AndroidActions: no launch intent, or startActivity's ActivityNotFoundException, when it is not installed (or hidden). */
    @Override
    public CommandResult launchApp(String packageName, String activity) throws InterruptedException {
        CommandResult r = simulate("launch_app", "launched " + packageName + (activity == null ? "" : "/" + activity));
        if (CommandResult.SUCCEEDED.equals(r.status)) {
            boolean hidden = policy.isHidden(packageName); // a hidden app has no launch intent either
            synchronized (this) {
                if (!packages.containsKey(packageName) || hidden) {
                    return activity == null ? CommandResult.failed("no launchable activity in " + packageName)
                            : CommandResult.failed("ActivityNotFoundException: Unable to find explicit activity class {"
                                    + packageName + "/" + (activity.startsWith(".") ? packageName + activity : activity)
                                    + "}; have you declared this activity in your AndroidManifest.xml?");
                }
                foreground = packageName;
            }
        }
        return r;
    }

    @Override
    public CommandResult reboot() throws InterruptedException {
        return simulate("reboot", "reboot simulated");
    }

    @Override
    public CommandResult lock() throws InterruptedException {
        return simulate("lock", "locked");
    }

    @Override
    public CommandResult shell(List<String> argv) throws InterruptedException, java.io.IOException {
        CommandResult r = simulate("shell", "");
        return CommandResult.SUCCEEDED.equals(r.status) ? shell.run(argv) : r;
    }

    @Override
    public CommandResult installApk(File apk, ApkSpec spec) throws InterruptedException {
        CommandResult r = simulate("install_apk", "install " + spec.packageName + " " + spec.versionCode
                + ": done (" + apk.length() + " bytes, sha256 checked)");
        if (!CommandResult.SUCCEEDED.equals(r.status)) {
            return r;
        }
        synchronized (this) {
            Long current = packages.get(spec.packageName);
            if (current != null && spec.versionCode < current) {
                return installerFailure("install " + spec.packageName + " " + spec.versionCode, STATUS_FAILURE_INVALID,
                        "INSTALL_FAILED_VERSION_DOWNGRADE: Downgrade detected: Update version code " + spec.versionCode
                                + " is older than current " + current);
            }
            packages.put(spec.packageName, spec.versionCode);
            persist();
        }
        if (spec.packageName.equals(ownPackage)) {
            killer.packageReplaced(spec.packageName, spec.versionCode); // the runner does not come back
        }
        return r;
    }

    @Override
    public synchronized OptionalLong installedVersionCode(String packageName) {
        Long code = packages.get(packageName);
        return code == null ? OptionalLong.empty() : OptionalLong.of(code);
    }

    @Override
    public CommandResult uninstallApp(String packageName) throws InterruptedException {
        CommandResult r = simulate("uninstall_app", "uninstalled " + packageName);
        if (!CommandResult.SUCCEEDED.equals(r.status)) {
            return r;
        }
        if (packageName.equals(ownPackage)) {
            return installerFailure("uninstall " + packageName, STATUS_FAILURE,
                    "DELETE_FAILED_DEVICE_POLICY_MANAGER: the Device Owner's package cannot be uninstalled");
        }
        synchronized (this) {
            if (packages.remove(packageName) != null) {
                persist();
            }
        }
        return r;
    }

    @Override
    public CommandResult clearAppData(String packageName) throws InterruptedException {
        return simulate("clear_app_data", "cleared " + packageName);
    }

    @Override
    public CommandResult configureWifi(WifiConfig config) throws InterruptedException {
        return simulate("wifi_configure", "configured " + config.ssid); // never the password
    }

    @Override
    public JSONObject read() {
        // The policy's flags first: its lock is never taken inside this device's.
        boolean lockTask = policy.lockTaskActive();
        boolean usageAccess = policy.usageAccess();
        boolean exempt = policy.batteryOptimizationExempt();
        String fg;
        synchronized (this) {
            fg = foreground;
        }
        long uptimeS = (System.currentTimeMillis() - startedMs) / 1000;
        return Json.obj("battery_pct", (int) Math.max(5, 100 - uptimeS / 60), "charging", false,
                "battery_temp_c", 31.5, "mem_total_mb", 3840, "mem_avail_mb", 1650,
                "storage_total_mb", 59000, "storage_free_mb", 41000, "network_type", "wifi",
                "wifi_ssid", "headless", "wifi_rssi", -55, "ip_address", "127.0.0.1",
                "foreground_app", fg, "uptime_s", uptimeS, "os_version", OS_VERSION,
                "security_patch", SECURITY_PATCH, "pending_system_update", null,
                "lock_task_active", lockTask, "usage_access", usageAccess, "battery_optimization_exempt", exempt);
    }

    @Override
    public synchronized List<AppInfo> apps() {
        List<AppInfo> out = new ArrayList<>(packages.size());
        for (Map.Entry<String, Long> e : packages.entrySet()) {
            out.add(new AppInfo(e.getKey(), String.valueOf(e.getValue()), e.getValue(), SYSTEM.contains(e.getKey()), true));
        }
        return out;
    }
}
