package dev.mdm.agent;

import android.util.Log;

import org.json.JSONObject;

import dev.mdm.agent.core.EventSink;

/** The core's events in logcat (`adb logcat -s mdm-agent`); the core never puts secrets in them. */
final class LogcatEvents implements EventSink {
    @Override
    public void emit(String event, JSONObject fields) {
        int priority = event.equals("error") || event.equals("bad_envelope") ? Log.WARN : Log.INFO;
        Log.println(priority, AgentRuntime.TAG, event + " " + fields);
    }
}
