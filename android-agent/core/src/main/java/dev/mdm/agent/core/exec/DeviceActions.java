package dev.mdm.agent.core.exec;

import java.io.File;
import java.util.List;
import java.util.OptionalLong;

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

    /**
     * apk is downloaded and its sha256 checked; install silently (Device Owner). Installing the
     * agent's own package may never return: Android kills the process whose package it replaces,
     * and the agent confirms that install from {@link #installedVersionCode} after its restart.
     */
    CommandResult installApk(File apk, ApkSpec spec) throws Exception;

    /**
     * The version code the package manager reports for packageName (PackageInfo.getLongVersionCode
     * on Android), or empty when it is not installed. Read after every install instead of
     * assuming the installer's success means the command's version is what ended up installed.
     */
    OptionalLong installedVersionCode(String packageName) throws Exception;

    CommandResult uninstallApp(String packageName) throws Exception;

    CommandResult clearAppData(String packageName) throws Exception;

    CommandResult configureWifi(WifiConfig config) throws Exception;
}
