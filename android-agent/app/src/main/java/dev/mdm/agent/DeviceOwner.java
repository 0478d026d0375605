package dev.mdm.agent;

import android.Manifest;
import android.app.admin.DevicePolicyManager;
import android.content.Context;
import android.os.Build;
import android.util.Log;

/** Device Owner helpers: the policy manager, and the runtime permissions the agent grants itself. */
public final class DeviceOwner {
    private DeviceOwner() {}

    public static DevicePolicyManager dpm(Context context) {
        return (DevicePolicyManager) context.getSystemService(Context.DEVICE_POLICY_SERVICE);
    }

    public static boolean isDeviceOwner(Context context) {
        return dpm(context).isDeviceOwnerApp(context.getPackageName());
    }

    /** READ_PHONE_STATE for Build.getSerial(), location for the Wi-Fi SSID, notifications for the service. */
    public static void selfGrant(Context context) {
        if (!isDeviceOwner(context)) {
            return;
        }
        String[] permissions = Build.VERSION.SDK_INT >= 33
                ? new String[] {Manifest.permission.READ_PHONE_STATE, Manifest.permission.ACCESS_FINE_LOCATION,
                        Manifest.permission.POST_NOTIFICATIONS}
                : new String[] {Manifest.permission.READ_PHONE_STATE, Manifest.permission.ACCESS_FINE_LOCATION};
        for (String p : permissions) {
            try {
                dpm(context).setPermissionGrantState(AdminReceiver.component(context), context.getPackageName(), p,
                        DevicePolicyManager.PERMISSION_GRANT_STATE_GRANTED);
            } catch (SecurityException e) {
                Log.w(AgentRuntime.TAG, "cannot grant " + p, e);
            }
        }
    }

    /** Build.getSerial() for a Device Owner; ANDROID_ID if the serial is not readable. */
    @SuppressWarnings("HardwareIds")
    public static String hardwareId(Context context) {
        try {
            String serial = Build.getSerial();
            if (serial != null && !serial.isEmpty() && !Build.UNKNOWN.equals(serial)) {
                return serial;
            }
        } catch (SecurityException e) {
            Log.w(AgentRuntime.TAG, "serial not readable; using ANDROID_ID", e);
        }
        return "android-id-" + android.provider.Settings.Secure.getString(context.getContentResolver(),
                android.provider.Settings.Secure.ANDROID_ID);
    }
}
