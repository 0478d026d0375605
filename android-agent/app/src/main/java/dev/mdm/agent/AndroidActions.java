package dev.mdm.agent;

import android.app.admin.DevicePolicyManager;
import android.content.ComponentName;
import android.content.Context;
import android.content.Intent;
import android.content.pm.PackageInfo;
import android.content.pm.PackageInstaller;
import android.content.pm.PackageManager;
import android.net.wifi.WifiConfiguration;
import android.net.wifi.WifiManager;
import android.os.Build;
import android.util.Log;

import androidx.core.content.pm.PackageInfoCompat;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import dev.mdm.agent.core.exec.ApkSpec;
import dev.mdm.agent.core.exec.CommandResult;
import dev.mdm.agent.core.exec.DeviceActions;
import dev.mdm.agent.core.exec.WifiConfig;

/** The command executors on a Device Owner: DevicePolicyManager, PackageInstaller, WifiManager, intents. */
final class AndroidActions implements DeviceActions {
    private static final long SHELL_TIMEOUT_S = 60;
    private static final long INSTALL_TIMEOUT_S = 300;
    private static final long REBOOT_WAIT_MS = 60_000;
    private static final AtomicInteger TOKENS = new AtomicInteger(1);

    private final Context context;

    AndroidActions(Context context) {
        this.context = context;
    }

    private DevicePolicyManager dpm() {
        return DeviceOwner.dpm(context);
    }

    private ComponentName admin() {
        return AdminReceiver.component(context);
    }

    @Override
    public CommandResult ping() {
        return CommandResult.succeeded(0, "pong");
    }

    @Override
    public CommandResult launchApp(String packageName, String activity) {
        Intent intent;
        if (activity != null) {
            String cls = activity.startsWith(".") ? packageName + activity : activity;
            intent = new Intent(Intent.ACTION_MAIN).addCategory(Intent.CATEGORY_LAUNCHER)
                    .setComponent(new ComponentName(packageName, cls));
        } else {
            intent = context.getPackageManager().getLaunchIntentForPackage(packageName);
            if (intent == null) {
                return CommandResult.failed("no launchable activity in " + packageName);
            }
        }
        // A Device Owner is exempt from the background activity start restrictions.
        intent.addFlags(Intent.FLAG_ACTIVITY_NEW_TASK | Intent.FLAG_ACTIVITY_RESET_TASK_IF_NEEDED);
        context.startActivity(intent);
        return CommandResult.succeeded(0, "launched " + intent.getComponent());
    }

    /**
     * Runs on the command thread, after the core posted running. DevicePolicyManager.reboot
     * throws while a call is in progress (IllegalStateException) or when not Device Owner
     * (SecurityException): failed, with the reason, and the process lives on. If it returns, the
     * device goes down and kills this process: the core finds the command RUNNING after the boot
     * and reports succeeded only because uptime restarted. Still alive a minute later: failed.
     */
    @Override
    public CommandResult reboot() throws InterruptedException {
        try {
            dpm().reboot(admin());
        } catch (IllegalStateException | SecurityException e) {
            return CommandResult.failed("reboot refused: " + e.getMessage());
        }
        Thread.sleep(REBOOT_WAIT_MS);
        return CommandResult.failed("reboot requested, but the device was still up " + REBOOT_WAIT_MS / 1000 + " s later");
    }

    @Override
    public CommandResult lock() {
        dpm().lockNow();
        return CommandResult.succeeded(0, "locked");
    }

    @Override
    public CommandResult shell(List<String> argv) throws Exception {
        Process process = new ProcessBuilder(argv).redirectErrorStream(true).start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Thread reader = new Thread(() -> {
            byte[] buf = new byte[8192];
            try (InputStream in = process.getInputStream()) {
                for (int n; (n = in.read(buf)) > 0; ) {
                    synchronized (out) {
                        if (out.size() < CommandResult.MAX_OUTPUT_CHARS) {
                            out.write(buf, 0, n);
                        }
                    }
                }
            } catch (java.io.IOException ignored) {
                // the process ended or was killed
            }
        }, "mdm-agent-shell");
        reader.start();
        if (!process.waitFor(SHELL_TIMEOUT_S, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            return CommandResult.failed(null, text(out), "timed out after " + SHELL_TIMEOUT_S + " s");
        }
        reader.join(2_000);
        int exit = process.exitValue();
        return exit == 0 ? CommandResult.succeeded(0, text(out)) : CommandResult.failed(exit, text(out), "exit code " + exit);
    }

    private static String text(ByteArrayOutputStream out) {
        synchronized (out) {
            return new String(out.toByteArray(), StandardCharsets.UTF_8);
        }
    }

    @Override
    public CommandResult installApk(File apk, ApkSpec spec) throws Exception {
        PackageInstaller installer = context.getPackageManager().getPackageInstaller();
        PackageInstaller.SessionParams params = new PackageInstaller.SessionParams(PackageInstaller.SessionParams.MODE_FULL_INSTALL);
        params.setAppPackageName(spec.packageName);
        params.setSize(apk.length());
        params.setInstallReason(PackageManager.INSTALL_REASON_POLICY);
        if (Build.VERSION.SDK_INT >= 31) {
            // Silent as the Device Owner anyway; declared too, because an app updating itself
            // qualifies for it on its own, so the agent's self-update never waits for a user.
            params.setRequireUserAction(PackageInstaller.SessionParams.USER_ACTION_NOT_REQUIRED);
        }
        boolean self = spec.packageName.equals(context.getPackageName());
        int sessionId = installer.createSession(params);
        try (PackageInstaller.Session session = installer.openSession(sessionId)) {
            try (InputStream in = new FileInputStream(apk); OutputStream out = session.openWrite("base.apk", 0, apk.length())) {
                byte[] buf = new byte[64 * 1024];
                for (int n; (n = in.read(buf)) > 0; ) {
                    out.write(buf, 0, n);
                }
                session.fsync(out);
            }
            PackageResultReceiver.Waiter waiter = PackageResultReceiver.expect(sessionId);
            if (self) {
                // Android kills this process once the new APK replaces it, before the status
                // arrives: the command stays RUNNING in the store, SelfUpdateReceiver starts the
                // new version, and the core confirms the version from the package manager then.
                Log.i(AgentRuntime.TAG, "updating the agent itself to versionCode " + spec.versionCode
                        + "; the process ends with the install");
            }
            session.commit(PackageResultReceiver.intentSender(context, sessionId));
            AndroidInventory.invalidate();
            CommandResult r = waiter.await(INSTALL_TIMEOUT_S, "install " + spec.packageName + " " + spec.versionCode);
            AndroidInventory.invalidate(); // the heartbeat after this sends the new apps_hash
            return r;
        }
    }

    @Override
    @SuppressWarnings("deprecation") // getPackageInfo(String, int) is the only form before API 33
    public OptionalLong installedVersionCode(String packageName) {
        PackageManager pm = context.getPackageManager();
        try {
            PackageInfo info = Build.VERSION.SDK_INT >= 33
                    ? pm.getPackageInfo(packageName, PackageManager.PackageInfoFlags.of(0))
                    : pm.getPackageInfo(packageName, 0);
            // getLongVersionCode from API 28, versionCode before (minSdk is 26).
            return OptionalLong.of(PackageInfoCompat.getLongVersionCode(info));
        } catch (PackageManager.NameNotFoundException e) {
            return OptionalLong.empty();
        }
    }

    @Override
    public CommandResult uninstallApp(String packageName) throws Exception {
        int token = -TOKENS.getAndIncrement(); // negative: never a session id
        PackageResultReceiver.Waiter waiter = PackageResultReceiver.expect(token);
        context.getPackageManager().getPackageInstaller().uninstall(packageName, PackageResultReceiver.intentSender(context, token));
        AndroidInventory.invalidate();
        return waiter.await(INSTALL_TIMEOUT_S, "uninstall " + packageName);
    }

    @Override
    public CommandResult clearAppData(String packageName) throws Exception {
        if (Build.VERSION.SDK_INT < 28) {
            return CommandResult.failed("clear_app_data needs Android 9 (API 28)");
        }
        CountDownLatch done = new CountDownLatch(1);
        AtomicBoolean ok = new AtomicBoolean();
        dpm().clearApplicationUserData(admin(), packageName, Runnable::run, (pkg, succeeded) -> {
            ok.set(succeeded);
            done.countDown();
        });
        if (!done.await(60, TimeUnit.SECONDS)) {
            return CommandResult.failed("no answer from clearApplicationUserData in 60 s");
        }
        return ok.get() ? CommandResult.succeeded(0, "cleared " + packageName) : CommandResult.failed("could not clear " + packageName);
    }

    @Override
    @SuppressWarnings("deprecation") // addNetwork stays open to Device Owners on every API level
    public CommandResult configureWifi(WifiConfig config) {
        WifiConfiguration c;
        try {
            c = wifiConfiguration(config);
        } catch (IllegalArgumentException e) {
            return CommandResult.failed(e.getMessage());
        }
        WifiManager wifi = context.getApplicationContext().getSystemService(WifiManager.class);
        int networkId = wifi.addNetwork(c);
        if (networkId == -1) {
            return CommandResult.failed("the system refused the network " + config.ssid);
        }
        boolean enabled = wifi.enableNetwork(networkId, true);
        return CommandResult.succeeded(0, "network " + config.ssid + " added" + (enabled ? " and enabled" : ""));
    }

    /** The platform form of a checked WifiConfig; IllegalArgumentException for what this API level cannot carry. */
    @SuppressWarnings("deprecation")
    static WifiConfiguration wifiConfiguration(WifiConfig config) {
        WifiConfiguration c = new WifiConfiguration();
        c.SSID = quote(config.ssid);
        c.hiddenSSID = config.hidden;
        switch (config.security) {
            case "open":
                c.allowedKeyManagement.set(WifiConfiguration.KeyMgmt.NONE);
                break;
            case "wpa2":
                c.allowedKeyManagement.set(WifiConfiguration.KeyMgmt.WPA_PSK);
                c.preSharedKey = quote(config.password);
                break;
            case "wpa3":
                if (Build.VERSION.SDK_INT < 30) {
                    throw new IllegalArgumentException("WPA3 needs Android 11 (API 30)");
                }
                c.setSecurityParams(WifiConfiguration.SECURITY_TYPE_SAE);
                c.preSharedKey = quote(config.password);
                break;
            default:
                throw new IllegalArgumentException("eap needs an identity and EAP method that this item does not carry (yet)");
        }
        return c;
    }

    private static String quote(String s) {
        return "\"" + s + "\"";
    }
}
