package dev.mdm.agent.core.store;

import org.json.JSONObject;

/**
 * The device's policy (PROTOCOL.md v1.1): the last verified document, the value applied per item
 * and the status to report, as one JSON object ({@link dev.mdm.agent.core.policy.PolicySync}
 * owns its shape). It may hold Wi-Fi passwords: kept where the envelopes are, never logged.
 * save() must be durable when it returns.
 */
public interface PolicyStore {
    /** The stored object, or null before any policy. */
    JSONObject load();

    void save(JSONObject record);

    class InMemory implements PolicyStore {
        private String text;

        @Override
        public synchronized JSONObject load() {
            return text == null ? null : dev.mdm.agent.core.util.Json.parseObjectOrNull(text);
        }

        @Override
        public synchronized void save(JSONObject record) {
            text = record.toString();
            persist(record);
        }

        /** Hook for a durable subclass; called with the lock held. */
        protected void persist(JSONObject record) {}
    }
}
