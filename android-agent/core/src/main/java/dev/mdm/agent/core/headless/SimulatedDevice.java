package dev.mdm.agent.core.headless;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.json.JSONObject;

import dev.mdm.agent.core.exec.ApkSpec;
import dev.mdm.agent.core.exec.CommandResult;
import dev.mdm.agent.core.exec.DeviceActions;
import dev.mdm.agent.core.exec.WifiConfig;
import dev.mdm.agent.core.telemetry.AppInfo;
import dev.mdm.agent.core.telemetry.InventorySource;
import dev.mdm.agent.core.telemetry.TelemetrySource;
import dev.mdm.agent.core.util.Json;

/**
 * A pretend Android device for the headless runner: every action succeeds after a short latency
 * (except the type named by --fail-type, which fails), installs add to the inventory, and the
 * telemetry is plausible and slowly changing.
 */
final class SimulatedDevice implements DeviceActions, TelemetrySource, InventorySource {
    private final long latencyMs;
    private final String failType;
    private final long startedMs = System.currentTimeMillis();
    private final List<AppInfo> apps = new ArrayList<>(Arrays.asList(
            new AppInfo("com.android.settings", "14", 34, true, true),
            new AppInfo("com.android.chrome", "120.0.6099.144", 609914433, true, true),
            new AppInfo("com.example.kiosk", "1.0", 1, false, true)));
    private String foreground = "com.example.kiosk";

    SimulatedDevice(long latencyMs, String failType) {
        this.latencyMs = latencyMs;
        this.failType = failType;
    }

    private CommandResult simulate(String type, String output) throws InterruptedException {
        Thread.sleep(latencyMs);
        if (type.equals(failType)) {
            return CommandResult.failed(1, null, "simulated failure of " + type);
        }
        return CommandResult.succeeded(0, output);
    }

    @Override
    public CommandResult ping() throws InterruptedException {
        return simulate("ping", "pong");
    }

    @Override
    public CommandResult launchApp(String packageName, String activity) throws InterruptedException {
        CommandResult r = simulate("launch_app", "launched " + packageName + (activity == null ? "" : "/" + activity));
        if (CommandResult.SUCCEEDED.equals(r.status)) {
            synchronized (this) {
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
    public CommandResult shell(List<String> argv) throws InterruptedException {
        return simulate("shell", "simulated: " + String.join(" ", argv));
    }

    @Override
    public CommandResult installApk(File apk, ApkSpec spec) throws InterruptedException {
        CommandResult r = simulate("install_apk", "installed " + spec.packageName + " " + spec.versionCode
                + " (" + apk.length() + " bytes, sha256 checked)");
        if (CommandResult.SUCCEEDED.equals(r.status)) {
            synchronized (this) {
                apps.removeIf(a -> a.packageName.equals(spec.packageName));
                apps.add(new AppInfo(spec.packageName, String.valueOf(spec.versionCode), spec.versionCode, false, true));
            }
        }
        return r;
    }

    @Override
    public CommandResult uninstallApp(String packageName) throws InterruptedException {
        CommandResult r = simulate("uninstall_app", "uninstalled " + packageName);
        if (CommandResult.SUCCEEDED.equals(r.status)) {
            synchronized (this) {
                apps.removeIf(a -> a.packageName.equals(packageName));
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
    public synchronized JSONObject read() {
        long uptimeS = (System.currentTimeMillis() - startedMs) / 1000;
        return Json.obj("battery_pct", (int) Math.max(5, 100 - uptimeS / 60), "charging", false,
                "battery_temp_c", 31.5, "mem_total_mb", 3840, "mem_avail_mb", 1650,
                "storage_total_mb", 59000, "storage_free_mb", 41000, "network_type", "wifi",
                "wifi_ssid", "headless", "wifi_rssi", -55, "ip_address", "127.0.0.1",
                "foreground_app", foreground, "uptime_s", uptimeS);
    }

    @Override
    public synchronized List<AppInfo> apps() {
        return new ArrayList<>(apps);
    }
}
