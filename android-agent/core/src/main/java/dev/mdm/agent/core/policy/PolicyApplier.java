package dev.mdm.agent.core.policy;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.json.JSONArray;
import org.json.JSONObject;

import dev.mdm.agent.core.exec.ApkSpec;
import dev.mdm.agent.core.exec.CommandResult;
import dev.mdm.agent.core.exec.CommandRouter;
import dev.mdm.agent.core.exec.RetryLaterException;
import dev.mdm.agent.core.exec.ShellAllowlist;
import dev.mdm.agent.core.util.Json;

/**
 * Applies a policy's items (PROTOCOL.md v1.1) and says how each went. The shape of each value is
 * checked here, once, so the platforms get typed values; a value of the wrong shape is
 * {@code failed}, an item this agent does not know {@code unsupported}. The shell allowlist is
 * set on the router itself, required apps go through its install path; the rest is
 * {@link PolicyActions}. Items run in an order where what one needs comes first (the kiosk
 * package may be a required app).
 */
public final class PolicyApplier {
    public static final List<String> ITEMS = Collections.unmodifiableList(Arrays.asList(
            "shell_allowlist", "restrictions", "settings", "system_update", "wifi", "apps", "kiosk"));
    private static final Pattern MONTH_DAY = Pattern.compile("(\\d\\d)-(\\d\\d)");
    private static final int[] DAYS_IN_MONTH = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    private final PolicyActions actions;
    private final CommandRouter router;

    public PolicyApplier(PolicyActions actions, CommandRouter router) {
        this.actions = actions;
        this.router = router;
    }

    private interface Step {
        ItemStatus run() throws Exception;
    }

    /** Applies every item of items; previous holds the last value this device applied per item. */
    public Map<String, ItemStatus> apply(JSONObject items, JSONObject previous) {
        Map<String, ItemStatus> out = new LinkedHashMap<>();
        for (String name : ITEMS) {
            if (items.has(name)) {
                Object value = items.opt(name);
                Object prev = previous == null ? null : previous.opt(name);
                out.put(name, guarded(() -> applyOne(name, value, prev)));
            }
        }
        for (Iterator<String> it = items.keys(); it.hasNext(); ) {
            String name = it.next();
            if (!ITEMS.contains(name)) {
                out.put(name, ItemStatus.unsupported("this agent does not know the item " + name));
            }
        }
        return out;
    }

    private static ItemStatus guarded(Step step) {
        try {
            ItemStatus s = step.run();
            return s != null ? s : ItemStatus.failed("the device returned no status");
        } catch (IllegalArgumentException e) {
            return ItemStatus.failed("invalid value: " + e.getMessage());
        } catch (UnsupportedOperationException e) {
            return ItemStatus.unsupported(e.getMessage());
        } catch (Exception e) {
            String msg = e.getMessage();
            return ItemStatus.failed(e.getClass().getSimpleName() + (msg == null ? "" : ": " + msg));
        }
    }

    private ItemStatus applyOne(String name, Object value, Object prev) throws Exception {
        switch (name) {
            case "shell_allowlist":
                router.setAllowlist(allowlist(value));
                return ItemStatus.applied();
            case "restrictions":
                return actions.applyRestrictions(strings(value, name), prev == null ? null : lenientStrings(prev));
            case "settings":
                return actions.applySettings(object(value, name));
            case "system_update":
                return actions.applySystemUpdate(systemUpdate(object(value, name)));
            case "wifi":
                return actions.applyWifi(wifi(value), prev == null ? null : wifiIds(prev));
            case "apps":
                return apps(object(value, name), prev instanceof JSONObject ? (JSONObject) prev : null);
            case "kiosk":
                return actions.applyKiosk(kiosk(object(value, name)), prev instanceof JSONObject ? kioskOrNull((JSONObject) prev) : null);
            default:
                throw new IllegalStateException(name);
        }
    }

    // ---- shapes -----------------------------------------------------------------------------

    static JSONObject object(Object value, String name) {
        if (!(value instanceof JSONObject)) {
            throw new IllegalArgumentException(name + " must be an object");
        }
        return (JSONObject) value;
    }

    static List<String> strings(Object value, String name) {
        List<String> out = value instanceof JSONArray ? Json.strings(Json.obj("v", value), "v") : null;
        if (out == null) {
            throw new IllegalArgumentException(name + " must be an array of strings");
        }
        return out;
    }

    private static List<String> lenientStrings(Object value) {
        List<String> out = value instanceof JSONArray ? Json.strings(Json.obj("v", value), "v") : null;
        return out == null ? Collections.<String>emptyList() : out;
    }

    static ShellAllowlist allowlist(Object value) {
        if (!(value instanceof JSONArray)) {
            throw new IllegalArgumentException("shell_allowlist must be an array of argv prefixes");
        }
        JSONArray a = (JSONArray) value;
        List<List<String>> prefixes = new ArrayList<>();
        for (int i = 0; i < a.length(); i++) {
            List<String> prefix = a.opt(i) instanceof JSONArray ? strings(a.opt(i), "shell_allowlist[" + i + "]") : null;
            if (prefix == null || prefix.isEmpty()) {
                throw new IllegalArgumentException("shell_allowlist[" + i + "] must be a non-empty array of strings");
            }
            prefixes.add(prefix);
        }
        return new ShellAllowlist(prefixes);
    }

    static KioskSpec kiosk(JSONObject o) {
        String pkg = Json.string(o, "package");
        if (!CommandRouter.isPackageName(pkg)) {
            throw new IllegalArgumentException("kiosk.package must be a package name");
        }
        Object activity = o.opt("activity");
        if (activity != null && activity != JSONObject.NULL && !CommandRouter.isActivityName(activity instanceof String ? (String) activity : null)) {
            throw new IllegalArgumentException("kiosk.activity must be a class name");
        }
        return new KioskSpec(pkg, activity instanceof String ? (String) activity : null, flag(o, "lock_task", "kiosk"),
                flag(o, "relaunch", "kiosk"), flag(o, "status_bar", "kiosk"));
    }

    private static KioskSpec kioskOrNull(JSONObject o) {
        try {
            return kiosk(o);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    private static boolean flag(JSONObject o, String key, String item) {
        Object v = o.opt(key);
        if (v == null || v == JSONObject.NULL) {
            return false;
        }
        if (!(v instanceof Boolean)) {
            throw new IllegalArgumentException(item + "." + key + " must be a boolean");
        }
        return (Boolean) v;
    }

    static SystemUpdateSpec systemUpdate(JSONObject o) {
        String type = Json.string(o, "type");
        if (!SystemUpdateSpec.AUTOMATIC.equals(type) && !SystemUpdateSpec.WINDOWED.equals(type)
                && !SystemUpdateSpec.POSTPONE.equals(type)) {
            throw new IllegalArgumentException("system_update.type must be automatic, windowed or postpone");
        }
        int start = 0;
        int end = 0;
        if (SystemUpdateSpec.WINDOWED.equals(type)) {
            start = minuteOfDay(o, "window_start_min");
            end = minuteOfDay(o, "window_end_min");
        }
        List<SystemUpdateSpec.FreezePeriod> periods = new ArrayList<>();
        JSONArray fp = o.optJSONArray("freeze_periods");
        if (o.has("freeze_periods") && !o.isNull("freeze_periods") && fp == null) {
            throw new IllegalArgumentException("system_update.freeze_periods must be an array");
        }
        for (JSONObject p : Json.objects(fp)) {
            int[] s = monthDay(Json.string(p, "start"));
            int[] e = monthDay(Json.string(p, "end"));
            periods.add(new SystemUpdateSpec.FreezePeriod(s[0], s[1], e[0], e[1]));
        }
        if (fp != null && periods.size() != fp.length()) {
            throw new IllegalArgumentException("system_update.freeze_periods holds something that is not an object");
        }
        return new SystemUpdateSpec(type, start, end, periods);
    }

    private static int minuteOfDay(JSONObject o, String key) {
        Long v = Json.integer(o, key);
        if (v == null || v < 0 || v >= 1440) {
            throw new IllegalArgumentException("system_update." + key + " must be 0-1439 (minutes after midnight)");
        }
        return v.intValue();
    }

    private static int[] monthDay(String s) {
        Matcher m = s == null ? null : MONTH_DAY.matcher(s);
        if (m == null || !m.matches()) {
            throw new IllegalArgumentException("a freeze period's start and end are MM-DD");
        }
        int month = Integer.parseInt(m.group(1));
        int day = Integer.parseInt(m.group(2));
        // Android's freeze periods ignore the year and have no February 29.
        if (month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1]) {
            throw new IllegalArgumentException(s + " is not a day of a non-leap year");
        }
        return new int[] {month, day};
    }

    static List<WifiNetwork> wifi(Object value) {
        if (!(value instanceof JSONArray)) {
            throw new IllegalArgumentException("wifi must be an array of networks");
        }
        JSONArray a = (JSONArray) value;
        List<WifiNetwork> out = new ArrayList<>();
        for (int i = 0; i < a.length(); i++) {
            JSONObject n = a.optJSONObject(i);
            Object id = n == null ? null : n.opt("id");
            if (!(id instanceof String) && !(id instanceof Number)) {
                throw new IllegalArgumentException("wifi[" + i + "] needs an id");
            }
            // Never echo the password: the router's messages name the rule, not the value.
            out.add(new WifiNetwork(String.valueOf(id), CommandRouter.checkedWifiConfig(n)));
        }
        return out;
    }

    private static List<String> wifiIds(Object prev) {
        List<String> ids = new ArrayList<>();
        if (prev instanceof JSONArray) {
            for (JSONObject n : Json.objects((JSONArray) prev)) {
                Object id = n.opt("id");
                if (id instanceof String || id instanceof Number) {
                    ids.add(String.valueOf(id));
                }
            }
        }
        return ids;
    }

    // ---- apps -------------------------------------------------------------------------------

    private ItemStatus apps(JSONObject o, JSONObject prev) throws Exception {
        List<String> problems = new ArrayList<>();
        List<String> waiting = new ArrayList<>();
        JSONArray required = o.optJSONArray("required");
        if (o.has("required") && !o.isNull("required") && required == null) {
            throw new IllegalArgumentException("apps.required must be an array");
        }
        for (int i = 0; required != null && i < required.length(); i++) {
            JSONObject r = required.optJSONObject(i);
            if (r == null) {
                throw new IllegalArgumentException("apps.required[" + i + "] must be an object");
            }
            requireApp(CommandRouter.checkedApkSpec(r), problems, waiting);
        }
        if (o.has("blocked") && !o.isNull("blocked")) {
            List<String> blocked = strings(o.opt("blocked"), "apps.blocked");
            for (String pkg : blocked) {
                if (!CommandRouter.isPackageName(pkg)) {
                    throw new IllegalArgumentException("apps.blocked holds " + pkg + ", not a package name");
                }
            }
            List<String> before = prev != null && prev.has("blocked") ? lenientStrings(prev.opt("blocked")) : null;
            ItemStatus hidden = guarded(() -> actions.applyBlockedApps(blocked, before));
            if (hidden.isPending()) {
                waiting.add(hidden.reason);
            } else if (!hidden.isApplied()) {
                problems.add("blocked: " + hidden.reason);
            }
        }
        if (!problems.isEmpty()) {
            return ItemStatus.failed(String.join("; ", problems));
        }
        return waiting.isEmpty() ? ItemStatus.applied() : ItemStatus.pending(String.join("; ", waiting));
    }

    private void requireApp(ApkSpec spec, List<String> problems, List<String> waiting) {
        OptionalLong have = router.installedVersionCode(spec.packageName);
        if (have.isPresent() && have.getAsLong() == spec.versionCode) {
            return; // desired state already: no download at every start
        }
        if (have.isPresent() && have.getAsLong() > spec.versionCode) {
            problems.add(spec.packageName + " versionCode " + have.getAsLong() + " is installed, newer than the required "
                    + spec.versionCode + " (Android refuses a downgrade)");
            return;
        }
        try {
            CommandResult r = router.installRequired(spec);
            if (!CommandResult.SUCCEEDED.equals(r.status)) {
                problems.add(spec.packageName + ": " + r.error);
            }
        } catch (RetryLaterException e) {
            waiting.add(spec.packageName + ": " + e.getMessage());
        }
    }
}
