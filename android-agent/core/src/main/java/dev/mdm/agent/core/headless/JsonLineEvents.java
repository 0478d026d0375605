package dev.mdm.agent.core.headless;

import java.io.PrintStream;
import java.util.Iterator;

import org.json.JSONObject;

import dev.mdm.agent.core.EventSink;
import dev.mdm.agent.core.util.Json;

/** One JSON object per line: {"event": name, "ts": unix ms, ...fields}. Flushed per line. */
final class JsonLineEvents implements EventSink {
    private final PrintStream out;

    JsonLineEvents(PrintStream out) {
        this.out = out;
    }

    @Override
    public void emit(String event, JSONObject fields) {
        JSONObject line = Json.obj("event", event, "ts", System.currentTimeMillis());
        if (fields != null) {
            for (Iterator<String> it = fields.keys(); it.hasNext(); ) {
                String key = it.next();
                Json.put(line, key, fields.opt(key));
            }
        }
        synchronized (out) {
            out.println(line);
            out.flush();
        }
    }
}
