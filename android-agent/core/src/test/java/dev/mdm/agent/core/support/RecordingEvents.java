package dev.mdm.agent.core.support;

import java.util.ArrayList;
import java.util.List;

import org.json.JSONObject;

import dev.mdm.agent.core.EventSink;
import dev.mdm.agent.core.util.Json;

/** Keeps every event as {"event": name, ...fields}, in order. */
public final class RecordingEvents implements EventSink {
    private final List<JSONObject> events = new ArrayList<>();

    @Override
    public synchronized void emit(String event, JSONObject fields) {
        JSONObject e = Json.parseObjectOrNull(fields.toString());
        Json.put(e, "event", event);
        events.add(e);
    }

    public synchronized List<JSONObject> named(String name) {
        List<JSONObject> out = new ArrayList<>();
        for (JSONObject e : events) {
            if (name.equals(e.optString("event"))) {
                out.add(e);
            }
        }
        return out;
    }

    public synchronized List<String> names() {
        List<String> out = new ArrayList<>();
        for (JSONObject e : events) {
            out.add(e.optString("event"));
        }
        return out;
    }

    public synchronized void clear() {
        events.clear();
    }

    @Override
    public synchronized String toString() {
        StringBuilder b = new StringBuilder();
        for (JSONObject e : events) {
            b.append(e).append('\n');
        }
        return b.toString();
    }
}
