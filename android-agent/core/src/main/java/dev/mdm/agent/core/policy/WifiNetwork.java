package dev.mdm.agent.core.policy;

import dev.mdm.agent.core.exec.WifiConfig;

/** One network of the wifi item: the policy's id for it and its configuration (a secret). */
public final class WifiNetwork {
    public final String id;
    public final WifiConfig config;

    public WifiNetwork(String id, WifiConfig config) {
        this.id = id;
        this.config = config;
    }

    @Override
    public String toString() {
        return id + ":" + config; // WifiConfig.toString leaves the password out
    }
}
