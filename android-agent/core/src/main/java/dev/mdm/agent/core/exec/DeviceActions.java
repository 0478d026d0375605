package dev.mdm.agent.core.exec;

import java.io.File;
import java.util.List;

/**
 * The executors of the command types, one method each, called by {@link CommandRouter} with
 * params it already validated. The Android app implements them with DevicePolicyManager,
 * PackageInstaller, WifiManager and intents; the headless runner simulates them.
 * A method returns succeeded or failed; an exception becomes failed with its message.
 */
public interface DeviceActions {
    CommandResult ping() throws Exception;

    CommandResult launchApp(String packageName, String activity) throws Exception;

    /** Must return before the device goes down (schedule the reboot) so the result can be posted. */
    CommandResult reboot() throws Exception;

    CommandResult lock() throws Exception;

    /** argv already passed the agent's allowlist; run without a shell. */
    CommandResult shell(List<String> argv) throws Exception;

    /** apk is downloaded and its sha256 checked; install silently (Device Owner). */
    CommandResult installApk(File apk, ApkSpec spec) throws Exception;

    CommandResult uninstallApp(String packageName) throws Exception;

    CommandResult clearAppData(String packageName) throws Exception;

    CommandResult configureWifi(WifiConfig config) throws Exception;
}
