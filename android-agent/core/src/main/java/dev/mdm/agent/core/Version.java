package dev.mdm.agent.core;

public final class Version {
    public static final String NAME = "0.1.0";

    private Version() {}
}
