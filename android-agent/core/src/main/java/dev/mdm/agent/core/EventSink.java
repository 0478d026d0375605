package dev.mdm.agent.core;

import org.json.JSONObject;

/**
 * Where the agent reports what it does: one named event with its fields. The headless runner
 * prints each as a JSON line; the app writes them to logcat. Never given a secret.
 */
public interface EventSink {
    void emit(String event, JSONObject fields);

    EventSink NONE = (event, fields) -> { };
}
