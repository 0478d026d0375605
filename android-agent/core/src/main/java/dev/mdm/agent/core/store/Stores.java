package dev.mdm.agent.core.store;

/** The stores the agent needs, from one place (memory, files, or Room on Android). */
public final class Stores {
    public final StateStore state;
    public final CommandStore commands;
    public final SeenIdStore seenIds;
    public final PolicyStore policy;

    public Stores(StateStore state, CommandStore commands, SeenIdStore seenIds, PolicyStore policy) {
        this.state = state;
        this.commands = commands;
        this.seenIds = seenIds;
        this.policy = policy;
    }

    public static Stores inMemory() {
        return new Stores(new InMemoryStateStore(), new InMemoryCommandStore(), new InMemorySeenIdStore(),
                new PolicyStore.InMemory());
    }
}
