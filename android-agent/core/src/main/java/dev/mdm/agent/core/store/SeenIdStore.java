package dev.mdm.agent.core.store;

import org.json.JSONObject;

/**
 * Command ids already seen, each kept until one day after its expires_at, with the final result
 * once there is one (so a duplicate can make the device post it again).
 */
public interface SeenIdStore {
    long FORGET_AFTER_EXPIRY_S = 86400;

    final class Entry {
        public final long forgetAtS;
        public final JSONObject finalResult;

        public Entry(long forgetAtS, JSONObject finalResult) {
            this.forgetAtS = forgetAtS;
            this.finalResult = finalResult;
        }
    }

    Entry get(String id);

    void put(String id, Entry entry);

    /** Forgets the ids whose forgetAtS is before serverNowS; returns how many. */
    int prune(long serverNowS);

    int size();
}
