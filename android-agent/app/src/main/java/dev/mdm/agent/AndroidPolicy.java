package dev.mdm.agent;

import android.app.ActivityManager;
import android.app.ActivityOptions;
import android.app.admin.DevicePolicyManager;
import android.app.admin.FreezePeriod;
import android.app.admin.SystemUpdatePolicy;
import android.content.ComponentName;
import android.content.Context;
import android.content.Intent;
import android.content.IntentFilter;
import android.content.SharedPreferences;
import android.content.pm.PackageManager;
import android.net.wifi.WifiConfiguration;
import android.net.wifi.WifiManager;
import android.os.Build;

import org.json.JSONObject;

import java.time.MonthDay;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import dev.mdm.agent.core.policy.DeviceOwnerSettings;
import dev.mdm.agent.core.policy.ItemStatus;
import dev.mdm.agent.core.policy.KioskSpec;
import dev.mdm.agent.core.policy.PolicyActions;
import dev.mdm.agent.core.policy.SystemUpdateSpec;
import dev.mdm.agent.core.policy.UserRestrictions;
import dev.mdm.agent.core.policy.WifiNetwork;

/**
 * The policy items (PROTOCOL.md v1.1) with Device Owner APIs only: lock task, persistent HOME and
 * lock task features for the kiosk; SystemUpdatePolicy with freeze periods; for settings, the
 * DevicePolicyManager call of each key (DeviceOwnerSettings); user restrictions; the agent's own Wi-Fi
 * networks; setApplicationHidden. Every call can throw SecurityException when the app is not
 * (or no longer) Device Owner: the core reports that item failed with the message.
 */
final class AndroidPolicy implements PolicyActions {
    private final Context context;

    AndroidPolicy(Context context) {
        this.context = context.getApplicationContext();
    }

    private DevicePolicyManager dpm() {
        return DeviceOwner.dpm(context);
    }

    private ComponentName admin() {
        return AdminReceiver.component(context);
    }

    // ---- kiosk ------------------------------------------------------------------------------

    @Override
    public ItemStatus applyKiosk(KioskSpec k, KioskSpec previous) {
        ComponentName activity = kioskActivity(k);
        if (activity == null) {
            return ItemStatus.failed(k.packageName + " is not installed or has no launcher activity");
        }
        if (k.relaunch && !k.lockTask && !PolicyFlags.usageAccess(context)) {
            // Watching the foreground app needs usage access, an app-op a Device Owner cannot
            // grant itself (setPermissionGrantState covers runtime permissions only).
            return ItemStatus.failed("relaunch without lock_task needs usage access: adb shell appops set "
                    + context.getPackageName() + " GET_USAGE_STATS allow");
        }
        DevicePolicyManager dpm = dpm();
        if (previous != null && !previous.packageName.equals(k.packageName)) {
            dpm.clearPackagePersistentPreferredActivities(admin(), previous.packageName);
        }
        dpm.setLockTaskPackages(admin(), k.lockTask ? new String[] {k.packageName, context.getPackageName()} : new String[0]);
        if (Build.VERSION.SDK_INT >= 28) {
            // SYSTEM_INFO shows the status bar's clock, battery and signal; nothing there can be pulled down.
            dpm.setLockTaskFeatures(admin(), k.statusBar ? DevicePolicyManager.LOCK_TASK_FEATURE_SYSTEM_INFO
                    : DevicePolicyManager.LOCK_TASK_FEATURE_NONE);
        }
        IntentFilter home = new IntentFilter(Intent.ACTION_MAIN);
        home.addCategory(Intent.CATEGORY_HOME);
        home.addCategory(Intent.CATEGORY_DEFAULT);
        dpm.addPersistentPreferredActivity(admin(), home, activity);
        new AgentSettings(context).saveKiosk(k.packageName, activity.getClassName(), k.lockTask, k.relaunch);
        launchKiosk(context, activity, k.lockTask);
        return ItemStatus.applied();
    }

    private ComponentName kioskActivity(KioskSpec k) {
        PackageManager pm = context.getPackageManager();
        if (k.activity != null) {
            String cls = k.activity.startsWith(".") ? k.packageName + k.activity : k.activity;
            return isInstalled(k.packageName) ? new ComponentName(k.packageName, cls) : null;
        }
        Intent launch = pm.getLaunchIntentForPackage(k.packageName);
        return launch == null ? null : launch.getComponent();
    }

    private boolean isInstalled(String packageName) {
        try {
            context.getPackageManager().getApplicationInfo(packageName, 0);
            return true;
        } catch (PackageManager.NameNotFoundException e) {
            return false;
        }
    }

    /** Starts the kiosk, in lock task mode when asked (a Device Owner may start activities from the background). */
    static void launchKiosk(Context context, ComponentName activity, boolean lockTask) {
        Intent intent = new Intent(Intent.ACTION_MAIN).addCategory(Intent.CATEGORY_LAUNCHER).setComponent(activity)
                .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK | Intent.FLAG_ACTIVITY_RESET_TASK_IF_NEEDED);
        if (lockTask && Build.VERSION.SDK_INT >= 28) {
            ActivityOptions options = ActivityOptions.makeBasic().setLockTaskEnabled(true);
            context.startActivity(intent, options.toBundle());
        } else {
            context.startActivity(intent);
        }
    }

    // ---- system updates ---------------------------------------------------------------------

    @Override
    public ItemStatus applySystemUpdate(SystemUpdateSpec s) {
        SystemUpdatePolicy policy;
        switch (s.type) {
            case SystemUpdateSpec.WINDOWED:
                policy = SystemUpdatePolicy.createWindowedInstallPolicy(s.windowStartMin, s.windowEndMin);
                break;
            case SystemUpdateSpec.POSTPONE:
                policy = SystemUpdatePolicy.createPostponeInstallPolicy();
                break;
            default:
                policy = SystemUpdatePolicy.createAutomaticInstallPolicy();
        }
        if (!s.freezePeriods.isEmpty() && Build.VERSION.SDK_INT < 28) {
            return ItemStatus.unsupported("freeze periods need Android 9 (API 28)");
        }
        if (!s.freezePeriods.isEmpty() && Build.VERSION.SDK_INT >= 28) {
            List<FreezePeriod> periods = new ArrayList<>();
            for (SystemUpdateSpec.FreezePeriod p : s.freezePeriods) {
                periods.add(new FreezePeriod(MonthDay.of(p.startMonth, p.startDay), MonthDay.of(p.endMonth, p.endDay)));
            }
            try {
                policy.setFreezePeriods(periods); // Android's rules: at most 90 days, 60 days apart
            } catch (SystemUpdatePolicy.ValidationFailedException e) {
                return ItemStatus.failed("freeze periods refused: " + e.getMessage());
            }
        }
        dpm().setSystemUpdatePolicy(admin(), policy);
        return ItemStatus.applied();
    }

    // ---- settings and restrictions ----------------------------------------------------------

    @Override
    public ItemStatus applySettings(JSONObject settings) {
        DeviceOwnerSettings.Plan plan = DeviceOwnerSettings.plan(settings);
        for (DeviceOwnerSettings.Resolved r : plan.settings) {
            try {
                String refused = applySetting(r);
                if (refused != null) {
                    plan.refused.put(r.policyKey, refused);
                }
            } catch (SecurityException | IllegalArgumentException e) {
                plan.refused.put(r.policyKey, String.valueOf(e.getMessage()));
            }
        }
        return plan.statusWhenWritten();
    }

    /** One setting through its DevicePolicyManager call; null when set, else why not. */
    @SuppressWarnings("deprecation") // setGlobalSetting(auto_time*, wifi lockdown) is the way before API 30
    private String applySetting(DeviceOwnerSettings.Resolved r) {
        DevicePolicyManager dpm = dpm();
        switch (r.target) {
            case GLOBAL:
                dpm.setGlobalSetting(admin(), r.androidKey, r.value);
                return null;
            case SYSTEM:
                if (Build.VERSION.SDK_INT < 28) {
                    return "setSystemSetting needs Android 9 (API 28)";
                }
                dpm.setSystemSetting(admin(), r.androidKey, r.value);
                return null;
            case AUTO_TIME:
                if (Build.VERSION.SDK_INT >= 30) {
                    dpm.setAutoTimeEnabled(admin(), r.on());
                } else {
                    dpm.setGlobalSetting(admin(), r.androidKey, r.value);
                }
                return null;
            case AUTO_TIME_ZONE:
                if (Build.VERSION.SDK_INT >= 30) {
                    dpm.setAutoTimeZoneEnabled(admin(), r.on());
                } else {
                    dpm.setGlobalSetting(admin(), r.androidKey, r.value);
                }
                return null;
            case TIME_ZONE:
                if (Build.VERSION.SDK_INT < 28) {
                    return "setTimeZone needs Android 9 (API 28)";
                }
                // DevicePolicyManagerService returns false, changing nothing, while auto_time_zone is on.
                return dpm.setTimeZone(admin(), r.value) ? null
                        : "setTimeZone refused: the automatic time zone is on (set auto_time_zone to false)";
            case WIFI_LOCKDOWN:
                if (Build.VERSION.SDK_INT >= 30) {
                    dpm.setConfiguredNetworksLockdownState(admin(), r.on());
                } else {
                    dpm.setGlobalSetting(admin(), r.androidKey, r.value);
                }
                return null;
            case LOCATION:
                if (Build.VERSION.SDK_INT < 30) {
                    return "setLocationEnabled needs Android 11 (API 30)";
                }
                dpm.setLocationEnabled(admin(), r.on());
                return null;
            case CAMERA:
                dpm.setCameraDisabled(admin(), r.on());
                return null;
            case SCREEN_CAPTURE:
                dpm.setScreenCaptureDisabled(admin(), r.on());
                return null;
            case KEYGUARD:
                // false, changing nothing, while a PIN, pattern or password is set.
                return dpm.setKeyguardDisabled(admin(), r.on()) ? null
                        : "setKeyguardDisabled refused: a secure screen lock (PIN, pattern or password) is set";
            default:
                return "no Device Owner call for " + r.target;
        }
    }

    @Override
    public ItemStatus applyRestrictions(List<String> wanted, List<String> previous) {
        List<String> unknown = new ArrayList<>();
        Set<String> keep = new HashSet<>(wanted);
        if (previous != null) {
            for (String r : previous) {
                if (!keep.contains(r) && UserRestrictions.KNOWN.contains(r)) {
                    dpm().clearUserRestriction(admin(), r);
                }
            }
        }
        for (String r : wanted) {
            if (UserRestrictions.KNOWN.contains(r)) {
                dpm().addUserRestriction(admin(), r);
            } else {
                unknown.add(r);
            }
        }
        return unknown.isEmpty() ? ItemStatus.applied() : ItemStatus.failed("not Android user restrictions: " + unknown);
    }

    // ---- Wi-Fi ------------------------------------------------------------------------------

    /** policy network id -> Android networkId of the networks this agent added. */
    private SharedPreferences wifiIds() {
        return context.createDeviceProtectedStorageContext().getSharedPreferences("policy-wifi", Context.MODE_PRIVATE);
    }

    @Override
    @SuppressWarnings("deprecation") // add/update/removeNetwork stay open to a Device Owner on every API level
    public ItemStatus applyWifi(List<WifiNetwork> wanted, List<String> previousIds) {
        WifiManager wifi = context.getApplicationContext().getSystemService(WifiManager.class);
        SharedPreferences ids = wifiIds();
        SharedPreferences.Editor edit = ids.edit();
        List<String> problems = new ArrayList<>();
        Set<String> keep = new HashSet<>();
        for (WifiNetwork n : wanted) {
            keep.add(n.id);
            WifiConfiguration c;
            try {
                c = AndroidActions.wifiConfiguration(n.config);
            } catch (IllegalArgumentException e) {
                problems.add(n.config.ssid + ": " + e.getMessage());
                continue;
            }
            int known = ids.getInt(n.id, -1);
            int networkId;
            if (known >= 0) {
                c.networkId = known;
                networkId = wifi.updateNetwork(c);
            } else {
                networkId = wifi.addNetwork(c);
            }
            if (networkId == -1 && known >= 0) {
                networkId = wifi.addNetwork(c); // removed by someone else meanwhile: add it again
            }
            if (networkId == -1) {
                problems.add(n.config.ssid + ": the system refused the network");
            } else {
                edit.putInt(n.id, networkId);
            }
        }
        if (previousIds != null) {
            for (String id : previousIds) {
                int networkId = ids.getInt(id, -1);
                if (!keep.contains(id) && networkId >= 0) {
                    wifi.removeNetwork(networkId); // only networks this agent added: they carry its ids
                    edit.remove(id);
                }
            }
        }
        edit.commit();
        return problems.isEmpty() ? ItemStatus.applied() : ItemStatus.failed(String.join("; ", problems));
    }

    // ---- blocked apps -----------------------------------------------------------------------

    @Override
    public ItemStatus applyBlockedApps(List<String> blocked, List<String> previous) {
        List<String> refused = new ArrayList<>();
        Set<String> keep = new HashSet<>(blocked);
        if (previous != null) {
            for (String pkg : previous) {
                if (!keep.contains(pkg)) {
                    dpm().setApplicationHidden(admin(), pkg, false);
                }
            }
        }
        for (String pkg : blocked) {
            if (pkg.equals(context.getPackageName())) {
                refused.add(pkg + " (the Device Owner cannot hide itself)");
            } else if (isInstalled(pkg) && !dpm().setApplicationHidden(admin(), pkg, true)) {
                refused.add(pkg);
            } // not installed: nothing to hide; the next apply (every start) catches a later install
        }
        AndroidInventory.invalidate();
        return refused.isEmpty() ? ItemStatus.applied() : ItemStatus.failed("setApplicationHidden refused: " + refused);
    }

    /** What the lock task mode is now, for the heartbeat's lock_task_active. */
    static boolean lockTaskActive(Context context) {
        return context.getSystemService(ActivityManager.class).getLockTaskModeState() != ActivityManager.LOCK_TASK_MODE_NONE;
    }
}
