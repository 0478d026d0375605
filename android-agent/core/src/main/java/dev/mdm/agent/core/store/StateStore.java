package dev.mdm.agent.core.store;

/** Device id, token, keys and counters. save() must be durable when it returns. */
public interface StateStore {
    DeviceState load();

    void save(DeviceState state);
}
