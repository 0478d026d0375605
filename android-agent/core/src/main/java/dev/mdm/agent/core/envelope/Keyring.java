package dev.mdm.agent.core.envelope;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.json.JSONArray;

import dev.mdm.agent.core.util.Json;

/**
 * The device's command keys by kid: at most two (current plus next or previous). A
 * command_keys answer replaces the whole set; nothing is merged, so a retired key is gone at once.
 */
public final class Keyring {
    public static final int MAX_KEYS = 2;
    private final Map<String, CommandKey> keys = new LinkedHashMap<>();

    public Keyring() {}

    public Keyring(List<CommandKey> initial) {
        replaceAll(initial);
    }

    /** Replaces the set; returns true if it changed. Extra keys past two are ignored. */
    public synchronized boolean replaceAll(List<CommandKey> newKeys) {
        Map<String, CommandKey> next = new LinkedHashMap<>();
        for (CommandKey k : newKeys) {
            if (k != null && next.size() < MAX_KEYS) {
                next.put(k.kid, k);
            }
        }
        boolean changed = !next.equals(keys);
        keys.clear();
        keys.putAll(next);
        return changed;
    }

    /** Parses a command_keys array; unusable entries are skipped. */
    public static List<CommandKey> parse(JSONArray array) {
        List<CommandKey> out = new ArrayList<>();
        for (org.json.JSONObject o : Json.objects(array)) {
            CommandKey k = CommandKey.fromJson(o);
            if (k != null) {
                out.add(k);
            }
        }
        return out;
    }

    public synchronized CommandKey get(String kid) {
        return kid == null ? null : keys.get(kid);
    }

    /** The kids held, sorted, as sent in each heartbeat. */
    public synchronized List<String> kids() {
        List<String> out = new ArrayList<>(keys.keySet());
        Collections.sort(out);
        return out;
    }

    public synchronized List<CommandKey> keys() {
        return new ArrayList<>(keys.values());
    }

    public synchronized boolean isEmpty() {
        return keys.isEmpty();
    }
}
