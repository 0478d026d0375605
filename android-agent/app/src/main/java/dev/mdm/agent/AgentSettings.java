package dev.mdm.agent;

import android.content.Context;
import android.content.SharedPreferences;
import android.os.Bundle;
import android.os.PersistableBundle;

/**
 * Enrollment material from provisioning: the admin-extras bundle of a QR / NFC provisioning
 * (keys server_url, enroll_key, optional kiosk_package) or the adb CONFIGURE broadcast.
 * Kept in device-protected storage so the agent can start before the first unlock.
 */
public final class AgentSettings {
    public static final String SERVER_URL = "server_url";
    public static final String ENROLL_KEY = "enroll_key";
    public static final String KIOSK_PACKAGE = "kiosk_package";

    private final SharedPreferences prefs;

    public AgentSettings(Context context) {
        Context storage = context.createDeviceProtectedStorageContext();
        prefs = storage.getSharedPreferences("agent-settings", Context.MODE_PRIVATE);
    }

    public String serverUrl() {
        return prefs.getString(SERVER_URL, null);
    }

    public String enrollKey() {
        return prefs.getString(ENROLL_KEY, null);
    }

    public String kioskPackage() {
        return prefs.getString(KIOSK_PACKAGE, null);
    }

    public boolean isConfigured() {
        return serverUrl() != null && enrollKey() != null;
    }

    public void save(String serverUrl, String enrollKey, String kioskPackage) {
        SharedPreferences.Editor e = prefs.edit();
        if (serverUrl != null) {
            e.putString(SERVER_URL, serverUrl.trim());
        }
        if (enrollKey != null) {
            e.putString(ENROLL_KEY, enrollKey.trim());
        }
        if (kioskPackage != null) {
            e.putString(KIOSK_PACKAGE, kioskPackage.trim());
        }
        e.commit(); // provisioning may end the process right after
    }

    public void saveFrom(PersistableBundle extras) {
        if (extras != null) {
            save(extras.getString(SERVER_URL), extras.getString(ENROLL_KEY), extras.getString(KIOSK_PACKAGE));
        }
    }

    public void saveFrom(Bundle extras) {
        if (extras != null) {
            save(extras.getString(SERVER_URL), extras.getString(ENROLL_KEY), extras.getString(KIOSK_PACKAGE));
        }
    }
}
