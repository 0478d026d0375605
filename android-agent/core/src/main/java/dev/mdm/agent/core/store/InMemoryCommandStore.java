package dev.mdm.agent.core.store;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class InMemoryCommandStore implements CommandStore {
    protected final Map<String, CommandRecord> records = new LinkedHashMap<>();

    @Override
    public synchronized void put(CommandRecord record) {
        records.put(record.id, CommandRecord.fromJson(record.toJson()));
        persist();
    }

    @Override
    public synchronized CommandRecord get(String id) {
        CommandRecord r = records.get(id);
        return r == null ? null : CommandRecord.fromJson(r.toJson());
    }

    @Override
    public synchronized void remove(String id) {
        if (records.remove(id) != null) {
            persist();
        }
    }

    @Override
    public synchronized List<CommandRecord> all() {
        List<CommandRecord> out = new ArrayList<>();
        for (CommandRecord r : records.values()) {
            out.add(CommandRecord.fromJson(r.toJson()));
        }
        return out;
    }

    /** Hook for a durable subclass; called with the lock held. */
    protected void persist() {}
}
