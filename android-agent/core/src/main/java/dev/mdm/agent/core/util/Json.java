package dev.mdm.agent.core.util;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * Small helpers over org.json. Android's org.json (the one the agent runs with) throws the checked
 * JSONException from put() and the parsers; these wrap it so call sites stay readable, and read
 * values strictly (Android's optString turns JSON null into the text "null").
 */
public final class Json {
    private Json() {}

    /** Builds an object from alternating keys and values; a null value is written as JSON null. */
    public static JSONObject obj(Object... keysAndValues) {
        JSONObject o = new JSONObject();
        for (int i = 0; i + 1 < keysAndValues.length; i += 2) {
            put(o, (String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return o;
    }

    public static JSONObject put(JSONObject o, String key, Object value) {
        try {
            o.put(key, wrap(value));
        } catch (JSONException e) {
            throw new IllegalArgumentException("bad JSON value for " + key + ": " + value, e);
        }
        return o;
    }

    private static Object wrap(Object value) {
        if (value == null) {
            return JSONObject.NULL;
        }
        if (value instanceof Collection) {
            JSONArray a = new JSONArray();
            for (Object item : (Collection<?>) value) {
                a.put(wrap(item));
            }
            return a;
        }
        return value;
    }

    public static JSONObject parseObject(String text) throws JSONException {
        if (text == null) {
            throw new JSONException("no JSON text");
        }
        return new JSONObject(text);
    }

    /** Parses or returns null; for stored data we wrote ourselves. */
    public static JSONObject parseObjectOrNull(String text) {
        try {
            return text == null ? null : new JSONObject(text);
        } catch (JSONException e) {
            return null;
        }
    }

    public static String string(JSONObject o, String key) {
        Object v = o == null ? null : o.opt(key);
        return v instanceof String ? (String) v : null;
    }

    /** An integral JSON number (not a float with a fraction, not a string), or null. */
    public static Long integer(JSONObject o, String key) {
        Object v = o == null ? null : o.opt(key);
        if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte) {
            return ((Number) v).longValue();
        }
        if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            if (d == Math.rint(d) && Math.abs(d) < 9.0e15) {
                return (long) d;
            }
        }
        return null;
    }

    public static long integer(JSONObject o, String key, long fallback) {
        Long v = integer(o, key);
        return v == null ? fallback : v;
    }

    public static Boolean bool(JSONObject o, String key) {
        Object v = o == null ? null : o.opt(key);
        return v instanceof Boolean ? (Boolean) v : null;
    }

    public static boolean bool(JSONObject o, String key, boolean fallback) {
        Boolean v = bool(o, key);
        return v == null ? fallback : v;
    }

    /** The array's strings, or null if it is absent or holds anything that is not a string. */
    public static List<String> strings(JSONObject o, String key) {
        Object v = o == null ? null : o.opt(key);
        if (!(v instanceof JSONArray)) {
            return null;
        }
        JSONArray a = (JSONArray) v;
        List<String> out = new ArrayList<>(a.length());
        for (int i = 0; i < a.length(); i++) {
            Object item = a.opt(i);
            if (!(item instanceof String)) {
                return null;
            }
            out.add((String) item);
        }
        return out;
    }

    public static List<JSONObject> objects(JSONArray a) {
        List<JSONObject> out = new ArrayList<>();
        if (a != null) {
            for (int i = 0; i < a.length(); i++) {
                JSONObject item = a.optJSONObject(i);
                if (item != null) {
                    out.add(item);
                }
            }
        }
        return out;
    }

    public static JSONArray array(Collection<?> items) {
        return (JSONArray) wrap(items);
    }
}
