package dev.mdm.agent.core.store;

public class InMemoryStateStore implements StateStore {
    private DeviceState state = new DeviceState();

    @Override
    public synchronized DeviceState load() {
        return state.copy();
    }

    @Override
    public synchronized void save(DeviceState s) {
        state = s.copy();
        persist(state);
    }

    /** Hook for a durable subclass; called with the lock held. */
    protected void persist(DeviceState s) {}
}
