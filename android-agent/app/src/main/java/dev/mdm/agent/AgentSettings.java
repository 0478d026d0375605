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
    /** The policy's kiosk (PROTOCOL.md v1.1), as last applied: what KioskKeeper holds in front. */
    static final String KIOSK_ACTIVITY = "kiosk_activity";
    static final String KIOSK_LOCK_TASK = "kiosk_lock_task";
    static final String KIOSK_RELAUNCH = "kiosk_relaunch";
    /** Why the last provisioning was refused, shown until a valid one arrives. */
    static final String PROVISIONING_ERROR = "provisioning_error";

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

    String kioskActivity() {
        return prefs.getString(KIOSK_ACTIVITY, null);
    }

    boolean kioskLockTask() {
        return prefs.getBoolean(KIOSK_LOCK_TASK, false);
    }

    boolean kioskRelaunch() {
        // A kiosk_package from the QR extras alone (no policy yet) keeps its old meaning: relaunch.
        return prefs.getBoolean(KIOSK_RELAUNCH, true);
    }

    void saveKiosk(String packageName, String activity, boolean lockTask, boolean relaunch) {
        prefs.edit().putString(KIOSK_PACKAGE, packageName).putString(KIOSK_ACTIVITY, activity)
                .putBoolean(KIOSK_LOCK_TASK, lockTask).putBoolean(KIOSK_RELAUNCH, relaunch).commit();
    }

    String provisioningError() {
        return prefs.getString(PROVISIONING_ERROR, null);
    }

    /**
     * Why serverUrl cannot be the agent's server (not an absolute http(s) URL with a host), or
     * null when it can. Checked before it is saved: a bad one used to crash the service at every
     * start; now the provisioning is refused, visibly.
     */
    static String serverUrlProblem(String serverUrl) {
        if (serverUrl == null || serverUrl.trim().isEmpty()) {
            return "server_url is missing";
        }
        try {
            java.net.URL u = new java.net.URL(serverUrl.trim());
            String scheme = u.getProtocol().toLowerCase(java.util.Locale.ROOT);
            if (!scheme.equals("https") && !scheme.equals("http")) {
                return "server_url must be an http(s) URL, not " + scheme;
            }
            if (u.getHost() == null || u.getHost().isEmpty()) {
                return "server_url has no host";
            }
            return null;
        } catch (java.net.MalformedURLException e) {
            return "server_url is not a URL: " + e.getMessage();
        }
    }

    /** False, with the reason kept and shown, when serverUrl is not usable: nothing is saved then. */
    public boolean save(String serverUrl, String enrollKey, String kioskPackage) {
        String problem = serverUrl == null && serverUrl() != null ? null : serverUrlProblem(serverUrl);
        if (problem != null) {
            prefs.edit().putString(PROVISIONING_ERROR, problem).commit();
            return false;
        }
        SharedPreferences.Editor e = prefs.edit().remove(PROVISIONING_ERROR);
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
        return true;
    }

    public boolean saveFrom(PersistableBundle extras) {
        return extras != null && save(extras.getString(SERVER_URL), extras.getString(ENROLL_KEY), extras.getString(KIOSK_PACKAGE));
    }

    public boolean saveFrom(Bundle extras) {
        return extras != null && save(extras.getString(SERVER_URL), extras.getString(ENROLL_KEY), extras.getString(KIOSK_PACKAGE));
    }
}
