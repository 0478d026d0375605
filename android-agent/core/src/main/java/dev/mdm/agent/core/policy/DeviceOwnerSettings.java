package dev.mdm.agent.core.policy;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.json.JSONObject;

import dev.mdm.agent.core.util.Json;

/**
 * The settings item's keys and how a Device Owner sets each on Android 14: only keys the
 * device-policy API lets it write (DevicePolicyManager.setGlobalSetting allows a fixed list,
 * setSystemSetting another; auto time has its own calls since API 30). Anything else would need
 * WRITE_SECURE_SETTINGS, which a DPC does not hold: such a key fails the item, by name.
 */
public final class DeviceOwnerSettings {
    /** Where a value goes. */
    public enum Target {
        /** DevicePolicyManager.setGlobalSetting(admin, key, value). */
        GLOBAL,
        /** DevicePolicyManager.setSystemSetting(admin, key, value). */
        SYSTEM,
        /** DevicePolicyManager.setAutoTimeEnabled (API 30). */
        AUTO_TIME,
        /** DevicePolicyManager.setAutoTimeZoneEnabled (API 30). */
        AUTO_TIME_ZONE
    }

    /** One setting resolved: the Android key and the value as the settings provider stores it. */
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
    }

    /** The resolved settings and, by policy key, why the others cannot be set. */
    public static final class Plan {
        public final List<Resolved> settings = new ArrayList<>();
        public final Map<String, String> refused = new LinkedHashMap<>();

        /** The item's status once every resolved setting was written. */
        public ItemStatus statusWhenWritten() {
            if (refused.isEmpty()) {
                return ItemStatus.applied();
            }
            List<String> parts = new ArrayList<>();
            for (Map.Entry<String, String> e : refused.entrySet()) {
                parts.add(e.getKey() + ": " + e.getValue());
            }
            return ItemStatus.failed(String.join("; ", parts));
        }
    }

    /** BatteryManager.BATTERY_PLUGGED_AC | USB | WIRELESS: stay on whatever the charger. */
    static final int PLUGGED_ANY = 1 | 2 | 4;

    private DeviceOwnerSettings() {}

    public static Plan plan(JSONObject settings) {
        Plan plan = new Plan();
        List<String> keys = new ArrayList<>();
        for (Iterator<String> it = settings.keys(); it.hasNext(); ) {
            keys.add(it.next());
        }
        Collections.sort(keys);
        for (String key : keys) {
            Object v = settings.opt(key);
            try {
                plan.settings.add(resolve(key, v));
            } catch (IllegalArgumentException e) {
                plan.refused.put(key, e.getMessage());
            }
        }
        return plan;
    }

    private static Resolved resolve(String key, Object v) {
        switch (key) {
            case "stay_on_while_plugged":
                return new Resolved(key, Target.GLOBAL, "stay_on_while_plugged_in", bool(key, v) ? String.valueOf(PLUGGED_ANY) : "0");
            case "screen_off_timeout_s":
                return new Resolved(key, Target.SYSTEM, "screen_off_timeout", String.valueOf(range(key, v, 5, 86_400) * 1000));
            case "screen_brightness":
                return new Resolved(key, Target.SYSTEM, "screen_brightness", String.valueOf(range(key, v, 0, 255)));
            case "screen_brightness_auto":
                return new Resolved(key, Target.SYSTEM, "screen_brightness_mode", bool(key, v) ? "1" : "0");
            case "auto_time":
                return new Resolved(key, Target.AUTO_TIME, "auto_time", bool(key, v) ? "1" : "0");
            case "auto_time_zone":
                return new Resolved(key, Target.AUTO_TIME_ZONE, "auto_time_zone", bool(key, v) ? "1" : "0");
            case "data_roaming":
                return new Resolved(key, Target.GLOBAL, "data_roaming", bool(key, v) ? "1" : "0");
            case "wifi_configs_lockdown":
                return new Resolved(key, Target.GLOBAL, "wifi_device_owner_configs_lockdown", bool(key, v) ? "1" : "0");
            default:
                throw new IllegalArgumentException("not a setting a Device Owner may change");
        }
    }

    private static boolean bool(String key, Object v) {
        if (!(v instanceof Boolean)) {
            throw new IllegalArgumentException("must be true or false");
        }
        return (Boolean) v;
    }

    private static long range(String key, Object v, long min, long max) {
        Long n = Json.integer(Json.obj("v", v), "v");
        if (n == null || n < min || n > max) {
            throw new IllegalArgumentException("must be an integer from " + min + " to " + max);
        }
        return n;
    }
}
