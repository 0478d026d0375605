package dev.mdm.agent;

import android.app.AppOpsManager;
import android.app.admin.DevicePolicyManager;
import android.app.admin.SystemUpdateInfo;
import android.content.Context;
import android.os.Build;
import android.os.PowerManager;
import android.os.Process;

import org.json.JSONObject;

import dev.mdm.agent.core.util.Json;

/**
 * The v1.1 heartbeat fields, read as they are rather than assumed: a Device Owner cannot grant
 * itself usage access (an app-op: setPermissionGrantState only covers runtime permissions) nor
 * put itself on the battery-optimisation allowlist (ACTION_REQUEST_IGNORE_BATTERY_OPTIMIZATIONS
 * asks the user). The adb one-liner can grant both ({@code appops set ... GET_USAGE_STATS allow},
 * {@code dumpsys deviceidle whitelist +...}); whatever holds is reported.
 */
final class PolicyFlags {
    private PolicyFlags() {}

    static void addTo(Context context, JSONObject o) {
        Json.put(o, "os_version", Build.VERSION.RELEASE);
        if (Build.VERSION.SECURITY_PATCH != null && Build.VERSION.SECURITY_PATCH.matches("\\d{4}-\\d{2}-\\d{2}")) {
            Json.put(o, "security_patch", Build.VERSION.SECURITY_PATCH);
        }
        try {
            Json.put(o, "pending_system_update", pendingUpdate(context));
        } catch (SecurityException e) {
            // not (or no longer) Device Owner: unknown, so left out rather than reported as none
        }
        Json.put(o, "lock_task_active", AndroidPolicy.lockTaskActive(context));
        Json.put(o, "usage_access", usageAccess(context));
        Json.put(o, "battery_optimization_exempt", batteryOptimizationExempt(context));
    }

    /** DevicePolicyManager.getPendingSystemUpdate: {received_at, security_patch: null} or null. */
    private static JSONObject pendingUpdate(Context context) {
        DevicePolicyManager dpm = DeviceOwner.dpm(context);
        SystemUpdateInfo info = dpm.getPendingSystemUpdate(AdminReceiver.component(context));
        if (info == null) {
            return null;
        }
        // SystemUpdateInfo says whether it is a security patch, not which level: the date is unknown.
        return Json.obj("received_at", info.getReceivedTime() / 1000, "security_patch", null);
    }

    @SuppressWarnings("deprecation") // checkOpNoThrow before API 29
    static boolean usageAccess(Context context) {
        AppOpsManager ops = context.getSystemService(AppOpsManager.class);
        int mode = Build.VERSION.SDK_INT >= 29
                ? ops.unsafeCheckOpNoThrow(AppOpsManager.OPSTR_GET_USAGE_STATS, Process.myUid(), context.getPackageName())
                : ops.checkOpNoThrow(AppOpsManager.OPSTR_GET_USAGE_STATS, Process.myUid(), context.getPackageName());
        return mode == AppOpsManager.MODE_ALLOWED;
    }

    static boolean batteryOptimizationExempt(Context context) {
        return context.getSystemService(PowerManager.class).isIgnoringBatteryOptimizations(context.getPackageName());
    }
}
