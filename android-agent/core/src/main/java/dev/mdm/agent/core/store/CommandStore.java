package dev.mdm.agent.core.store;

import java.util.List;

/**
 * The command queue and the result outbox in one: records by id. put() must be durable when it
 * returns, so a result survives a restart or an offline period until the server acknowledges it.
 */
public interface CommandStore {
    void put(CommandRecord record);

    CommandRecord get(String id);

    void remove(String id);

    /** Every record, in no particular order. */
    List<CommandRecord> all();
}
