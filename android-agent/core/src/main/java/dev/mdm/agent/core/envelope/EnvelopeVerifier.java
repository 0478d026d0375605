package dev.mdm.agent.core.envelope;

import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

import org.json.JSONException;
import org.json.JSONObject;

import dev.mdm.agent.core.util.Hex;
import dev.mdm.agent.core.util.Json;

/**
 * PROTOCOL.md "Envelope", rules 1 and 2: the signature first (nothing of the payload is trusted
 * before), then the device id and the lifetime judged by server time. Duplicates and ordering
 * (rules 3 and 4) belong to the agent, which holds the state they need.
 */
public final class EnvelopeVerifier {
    public static final long GRACE_S = 120;
    public static final long MAX_LIFETIME_S = 30L * 86400;

    private EnvelopeVerifier() {}

    /** Verifies envelope JSON text as received on the push path or inside an answer. */
    public static Verification verify(String envelopeJson, Keyring keys, String ownDeviceId, long serverNowS) {
        JSONObject envelope;
        try {
            envelope = Json.parseObject(envelopeJson);
        } catch (JSONException e) {
            return Verification.bad(Verification.Outcome.MALFORMED, null);
        }
        return verify(envelope, keys, ownDeviceId, serverNowS);
    }

    public static Verification verify(JSONObject envelope, Keyring keys, String ownDeviceId, long serverNowS) {
        String payload = Json.string(envelope, "payload");
        String kid = Json.string(envelope, "kid");
        String sig = Json.string(envelope, "sig");
        if (payload == null || sig == null) {
            return Verification.bad(Verification.Outcome.MALFORMED, kid);
        }
        CommandKey key = keys.get(kid);
        if (key == null) {
            return Verification.bad(Verification.Outcome.UNKNOWN_KID, kid);
        }
        byte[] given = Hex.decode(sig);
        byte[] expected = hmac(key.key(), payload);
        // isEqual is constant-time for equal lengths; a wrong length is not a secret.
        if (given == null || given.length != expected.length || !MessageDigest.isEqual(given, expected)) {
            return Verification.bad(Verification.Outcome.BAD_SIGNATURE, kid);
        }
        Command command = Command.parse(payload);
        if (command == null) {
            return Verification.bad(Verification.Outcome.MALFORMED, kid);
        }
        if (!command.deviceId.equals(ownDeviceId)) {
            return Verification.rejected(command, Verification.WRONG_DEVICE, kid);
        }
        if (isExpired(command, serverNowS)) {
            return Verification.rejected(command, Verification.EXPIRED, kid);
        }
        return Verification.valid(command, kid);
    }

    public static boolean isExpired(Command command, long serverNowS) {
        return command.expiresAt + GRACE_S < serverNowS || command.expiresAt - command.issuedAt > MAX_LIFETIME_S;
    }

    public static byte[] hmac(byte[] key, String payload) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(payload.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException | InvalidKeyException e) {
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }

    /** The server's side of the same scheme; used by tests and the headless runner's fixtures. */
    public static JSONObject sign(String payload, String kid, byte[] key) {
        return Json.obj("payload", payload, "kid", kid, "sig", Hex.encode(hmac(key, payload)));
    }
}
