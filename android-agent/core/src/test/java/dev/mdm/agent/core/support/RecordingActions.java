package dev.mdm.agent.core.support;

import java.io.File;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

import dev.mdm.agent.core.exec.ApkSpec;
import dev.mdm.agent.core.exec.CommandResult;
import dev.mdm.agent.core.exec.DeviceActions;
import dev.mdm.agent.core.exec.WifiConfig;
import dev.mdm.agent.core.util.Sha256;

/**
 * Records each call as "type arg..." and succeeds; a hook can run inside ping (to break the network
 * mid-command). Installs land in {@link #installed}, the package manager {@link #installedVersionCode}
 * reads, unless {@link #installLands} is off (an installer that says success but installed nothing).
 */
public class RecordingActions implements DeviceActions {
    public final List<String> calls = new ArrayList<>();
    public final Map<String, Long> installed = new HashMap<>();
    public Runnable duringPing;
    /** Runs once the install landed, before installApk returns (e.g. to end the process, as Android does to the agent it replaces). */
    public Runnable afterInstallLands;
    public volatile boolean installLands = true;

    private CommandResult record(String call) {
        synchronized (calls) {
            calls.add(call);
        }
        return CommandResult.succeeded(0, call);
    }

    public List<String> calls() {
        synchronized (calls) {
            return new ArrayList<>(calls);
        }
    }

    @Override
    public CommandResult ping() {
        if (duringPing != null) {
            duringPing.run();
        }
        return record("ping");
    }

    @Override
    public CommandResult launchApp(String packageName, String activity) {
        return record("launch_app " + packageName + (activity == null ? "" : " " + activity));
    }

    @Override
    public CommandResult reboot() {
        return record("reboot");
    }

    @Override
    public CommandResult lock() {
        return record("lock");
    }

    @Override
    public CommandResult shell(List<String> argv) {
        return record("shell " + String.join(" ", argv));
    }

    @Override
    public CommandResult installApk(File apk, ApkSpec spec) throws Exception {
        CommandResult r = record("install_apk " + spec.packageName + " " + Sha256.hex(apk));
        if (installLands) {
            synchronized (installed) {
                installed.put(spec.packageName, spec.versionCode);
            }
            if (afterInstallLands != null) {
                afterInstallLands.run();
            }
        }
        return r;
    }

    @Override
    public OptionalLong installedVersionCode(String packageName) {
        synchronized (installed) {
            Long v = installed.get(packageName);
            return v == null ? OptionalLong.empty() : OptionalLong.of(v);
        }
    }

    @Override
    public CommandResult uninstallApp(String packageName) {
        return record("uninstall_app " + packageName);
    }

    @Override
    public CommandResult clearAppData(String packageName) {
        return record("clear_app_data " + packageName);
    }

    @Override
    public CommandResult configureWifi(WifiConfig config) {
        return record("wifi_configure " + config.ssid + " " + config.security);
    }
}
