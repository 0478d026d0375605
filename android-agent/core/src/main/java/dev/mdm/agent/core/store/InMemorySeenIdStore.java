package dev.mdm.agent.core.store;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

public class InMemorySeenIdStore implements SeenIdStore {
    protected final Map<String, Entry> entries = new LinkedHashMap<>();

    @Override
    public synchronized Entry get(String id) {
        return entries.get(id);
    }

    @Override
    public synchronized void put(String id, Entry entry) {
        entries.put(id, entry);
        persist();
    }

    @Override
    public synchronized int prune(long serverNowS) {
        int removed = 0;
        for (Iterator<Entry> it = entries.values().iterator(); it.hasNext(); ) {
            if (it.next().forgetAtS < serverNowS) {
                it.remove();
                removed++;
            }
        }
        if (removed > 0) {
            persist();
        }
        return removed;
    }

    @Override
    public synchronized int size() {
        return entries.size();
    }

    /** Hook for a durable subclass; called with the lock held. */
    protected void persist() {}
}
