package dev.mdm.agent.core.policy;

import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.json.JSONObject;

import dev.mdm.agent.core.util.Json;

/**
 * The settings item's keys and how a Device Owner sets each on Android 14: only through the
 * device-policy API. DevicePolicyManagerService lets setGlobalSetting write a fixed allowlist
 * (adb_enabled, adb_wifi_enabled, auto_time, auto_time_zone, data_roaming,
 * usb_mass_storage_enabled, wifi_sleep_policy, stay_on_while_plugged_in,
 * wifi_device_owner_configs_lockdown, private_dns_*: anything else is a SecurityException) and
 * setSystemSetting only screen_brightness, screen_brightness_float, screen_brightness_mode and
 * screen_off_timeout; the rest have calls of their own. A DPC holds no WRITE_SECURE_SETTINGS, so
 * there is no other way.
 *
 * <p>{@link #KEYS} is exactly the server's set (commands/policies/items.py SETTINGS): both sides
 * test against core/src/test/resources/policy-settings.json. A key outside it is reported
 * {@code unsupported}, by name.
 */
public final class DeviceOwnerSettings {
    /**
     * The keys, in the order they are applied: auto_time_zone before time_zone, because
     * setTimeZone does nothing (returns false) while the automatic time zone is on.
     */
    public static final List<String> KEYS = Collections.unmodifiableList(Arrays.asList(
            "stay_on_while_plugged",
            "screen_off_timeout_s",
            "screen_brightness",
            "screen_brightness_auto",
            "auto_time",
            "auto_time_zone",
            "time_zone",
            "data_roaming",
            "wifi_configs_lockdown",
            "location_enabled",
            "camera_disabled",
            "screen_capture_disabled",
            "keyguard_disabled"));

    /** Where a value goes: one DevicePolicyManager call each. */
    public enum Target {
        /** setGlobalSetting(admin, key, value). */
        GLOBAL,
        /** setSystemSetting(admin, key, value) (API 28). */
        SYSTEM,
        /** setAutoTimeEnabled (API 30; before: setGlobalSetting auto_time). */
        AUTO_TIME,
        /** setAutoTimeZoneEnabled (API 30; before: setGlobalSetting auto_time_zone). */
        AUTO_TIME_ZONE,
        /** setTimeZone (API 28): false, and nothing set, while the automatic time zone is on. */
        TIME_ZONE,
        /** setConfiguredNetworksLockdownState (API 30; before: setGlobalSetting wifi_device_owner_configs_lockdown). */
        WIFI_LOCKDOWN,
        /** setLocationEnabled (API 30). */
        LOCATION,
        /** setCameraDisabled. */
        CAMERA,
        /** setScreenCaptureDisabled. */
        SCREEN_CAPTURE,
        /** setKeyguardDisabled: false, and nothing set, while a secure screen lock is set. */
        KEYGUARD
    }

    /** One setting resolved: the Android key and the value as Android stores it ("1"/"0" for a switch). */
    public static final class Resolved {
        public final String policyKey;
        public final Target target;
        public final String androidKey;
        public final String value;

        Resolved(String policyKey, Target target, String androidKey, String value) {
            this.policyKey = policyKey;
            this.target = target;
            this.androidKey = androidKey;
            this.value = value;
        }

        /** The value of a switch. */
        public boolean on() {
            return "1".equals(value);
        }
    }

    /** The resolved settings and, by policy key, those refused and those unknown here. */
    public static final class Plan {
        public final List<Resolved> settings = new ArrayList<>();
        /** Keys of this set whose value is bad or which the device refused: the item fails. */
        public final Map<String, String> refused = new LinkedHashMap<>();
        /** Keys outside this set: nothing a Device Owner can set, reported unsupported. */
        public final List<String> unsupported = new ArrayList<>();

        /** The item's status once every resolved setting was written (or refused). */
        public ItemStatus statusWhenWritten() {
            String unknown = unsupported.isEmpty() ? null
                    : "not settings a Device Owner can change: " + String.join(", ", unsupported);
            if (!refused.isEmpty()) {
                List<String> parts = new ArrayList<>();
                for (Map.Entry<String, String> e : refused.entrySet()) {
                    parts.add(e.getKey() + ": " + e.getValue());
                }
                if (unknown != null) {
                    parts.add(unknown);
                }
                return ItemStatus.failed(String.join("; ", parts));
            }
            return unknown == null ? ItemStatus.applied() : ItemStatus.unsupported(unknown);
        }
    }

    /** BatteryManager.BATTERY_PLUGGED_AC | USB | WIRELESS: stay on whatever the charger. */
    static final int PLUGGED_ANY = 1 | 2 | 4;
    /** Settings.Secure.LOCATION_MODE_ON and LOCATION_MODE_OFF. */
    static final String LOCATION_MODE_ON = "3";
    static final String LOCATION_MODE_OFF = "0";

    private DeviceOwnerSettings() {}

    public static Plan plan(JSONObject settings) {
        Plan plan = new Plan();
        List<String> unknown = new ArrayList<>();
        for (Iterator<String> it = settings.keys(); it.hasNext(); ) {
            String key = it.next();
            if (!KEYS.contains(key)) {
                unknown.add(key);
            }
        }
        Collections.sort(unknown);
        plan.unsupported.addAll(unknown);
        for (String key : KEYS) {
            if (!settings.has(key)) {
                continue;
            }
            try {
                plan.settings.add(resolve(key, settings.opt(key)));
            } catch (IllegalArgumentException e) {
                plan.refused.put(key, e.getMessage());
            }
        }
        return plan;
    }

    private static Resolved resolve(String key, Object v) {
        switch (key) {
            case "stay_on_while_plugged":
                return new Resolved(key, Target.GLOBAL, "stay_on_while_plugged_in", bool(v) ? String.valueOf(PLUGGED_ANY) : "0");
            case "screen_off_timeout_s":
                return new Resolved(key, Target.SYSTEM, "screen_off_timeout", String.valueOf(range(v, 5, 86_400) * 1000));
            case "screen_brightness":
                return new Resolved(key, Target.SYSTEM, "screen_brightness", String.valueOf(range(v, 0, 255)));
            case "screen_brightness_auto":
                return new Resolved(key, Target.SYSTEM, "screen_brightness_mode", flag(v));
            case "auto_time":
                return new Resolved(key, Target.AUTO_TIME, "auto_time", flag(v));
            case "auto_time_zone":
                return new Resolved(key, Target.AUTO_TIME_ZONE, "auto_time_zone", flag(v));
            case "time_zone":
                return new Resolved(key, Target.TIME_ZONE, "persist.sys.timezone", zone(v));
            case "data_roaming":
                return new Resolved(key, Target.GLOBAL, "data_roaming", flag(v));
            case "wifi_configs_lockdown":
                return new Resolved(key, Target.WIFI_LOCKDOWN, "wifi_device_owner_configs_lockdown", flag(v));
            case "location_enabled":
                return new Resolved(key, Target.LOCATION, "location_mode", bool(v) ? LOCATION_MODE_ON : LOCATION_MODE_OFF);
            case "camera_disabled":
                return new Resolved(key, Target.CAMERA, "camera_disabled", flag(v));
            case "screen_capture_disabled":
                return new Resolved(key, Target.SCREEN_CAPTURE, "screen_capture_disabled", flag(v));
            case "keyguard_disabled":
                return new Resolved(key, Target.KEYGUARD, "keyguard_disabled", flag(v));
            default:
                throw new IllegalStateException("KEYS and resolve() disagree on " + key);
        }
    }

    private static boolean bool(Object v) {
        if (!(v instanceof Boolean)) {
            throw new IllegalArgumentException("must be true or false");
        }
        return (Boolean) v;
    }

    private static String flag(Object v) {
        return bool(v) ? "1" : "0";
    }

    private static long range(Object v, long min, long max) {
        Long n = Json.integer(Json.obj("v", v), "v");
        if (n == null || n < min || n > max) {
            throw new IllegalArgumentException("must be an integer from " + min + " to " + max);
        }
        return n;
    }

    private static volatile Set<String> zones;

    /** An IANA zone id the platform knows (java.time's list: the same tzdata on Android 8+). */
    private static String zone(Object v) {
        if (zones == null) {
            zones = ZoneId.getAvailableZoneIds();
        }
        if (!(v instanceof String) || !zones.contains(v)) {
            throw new IllegalArgumentException("must be an IANA time zone like Europe/Paris");
        }
        return (String) v;
    }
}
