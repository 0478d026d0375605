package dev.mdm.agent.core.envelope;

import java.util.Arrays;
import java.util.Base64;

import org.json.JSONObject;

import dev.mdm.agent.core.util.Json;

/** One HMAC key the server distributes as {"kid": "...", "key": "base64 of 32 bytes"}. */
public final class CommandKey {
    public final String kid;
    private final byte[] key;

    public CommandKey(String kid, byte[] key) {
        if (kid == null || kid.isEmpty() || key == null || key.length == 0) {
            throw new IllegalArgumentException("a command key needs a kid and key bytes");
        }
        this.kid = kid;
        this.key = key.clone();
    }

    public byte[] key() {
        return key.clone();
    }

    /** Returns null for an entry that is not a usable key (so one bad entry cannot wipe the ring). */
    public static CommandKey fromJson(JSONObject o) {
        String kid = Json.string(o, "kid");
        String b64 = Json.string(o, "key");
        if (kid == null || kid.isEmpty() || b64 == null) {
            return null;
        }
        try {
            byte[] bytes = Base64.getDecoder().decode(b64.trim());
            return bytes.length == 0 ? null : new CommandKey(kid, bytes);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    public JSONObject toJson() {
        return Json.obj("kid", kid, "key", Base64.getEncoder().encodeToString(key));
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof CommandKey && kid.equals(((CommandKey) other).kid)
                && Arrays.equals(key, ((CommandKey) other).key);
    }

    @Override
    public int hashCode() {
        return kid.hashCode() * 31 + Arrays.hashCode(key);
    }

    @Override
    public String toString() {
        return "CommandKey(" + kid + ")"; // never the key bytes
    }
}
