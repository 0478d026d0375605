package dev.mdm.agent.core.support;

import java.io.File;
import java.util.ArrayList;
import java.util.List;

import dev.mdm.agent.core.exec.ApkSpec;
import dev.mdm.agent.core.exec.CommandResult;
import dev.mdm.agent.core.exec.DeviceActions;
import dev.mdm.agent.core.exec.WifiConfig;
import dev.mdm.agent.core.util.Sha256;

/** Records each call as "type arg..." and succeeds; a hook can run inside ping (to break the network mid-command). */
public class RecordingActions implements DeviceActions {
    public final List<String> calls = new ArrayList<>();
    public Runnable duringPing;

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
        return record("install_apk " + spec.packageName + " " + Sha256.hex(apk));
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
