package dev.mdm.agent.core.policy;

import java.security.MessageDigest;

import org.json.JSONException;
import org.json.JSONObject;

import dev.mdm.agent.core.envelope.CommandKey;
import dev.mdm.agent.core.envelope.EnvelopeVerifier;
import dev.mdm.agent.core.envelope.Keyring;
import dev.mdm.agent.core.envelope.Verification.Outcome;
import dev.mdm.agent.core.util.Hex;
import dev.mdm.agent.core.util.Json;

/**
 * PROTOCOL.md v1.1: {"policy": "<JSON text>", "kid", "sig"} is signed exactly like an envelope and
 * judged by the same device rules 1 and 2: the signature before anything of the text is trusted;
 * then the device id. A policy has no expiry: it is the desired state until a newer one.
 */
public final class PolicyVerifier {
    private PolicyVerifier() {}

    /** What rules 1-2 make of one policy answer. */
    public static final class Result {
        /** VALID, REJECTED (another device's), UNKNOWN_KID, BAD_SIGNATURE or MALFORMED. */
        public final Outcome outcome;
        public final PolicyDocument document;
        public final String kid;

        Result(Outcome outcome, PolicyDocument document, String kid) {
            this.outcome = outcome;
            this.document = document;
            this.kid = kid;
        }

        /** Counted in bad_envelopes, never applied nor reported against its version. */
        public boolean isBad() {
            return outcome == Outcome.UNKNOWN_KID || outcome == Outcome.BAD_SIGNATURE || outcome == Outcome.MALFORMED;
        }

        public String name() {
            return outcome.name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    public static Result verify(String answerJson, Keyring keys, String ownDeviceId) {
        JSONObject answer;
        try {
            answer = Json.parseObject(answerJson);
        } catch (JSONException e) {
            return new Result(Outcome.MALFORMED, null, null);
        }
        return verify(answer, keys, ownDeviceId);
    }

    public static Result verify(JSONObject answer, Keyring keys, String ownDeviceId) {
        String text = Json.string(answer, "policy");
        String kid = Json.string(answer, "kid");
        String sig = Json.string(answer, "sig");
        if (text == null || sig == null) {
            return new Result(Outcome.MALFORMED, null, kid);
        }
        CommandKey key = keys.get(kid);
        if (key == null) {
            return new Result(Outcome.UNKNOWN_KID, null, kid);
        }
        byte[] given = Hex.decode(sig);
        byte[] expected = EnvelopeVerifier.hmac(key.key(), text);
        if (given == null || given.length != expected.length || !MessageDigest.isEqual(given, expected)) {
            return new Result(Outcome.BAD_SIGNATURE, null, kid);
        }
        PolicyDocument doc = PolicyDocument.parse(text);
        if (doc == null) {
            return new Result(Outcome.MALFORMED, null, kid);
        }
        if (!doc.deviceId.equals(ownDeviceId)) {
            return new Result(Outcome.REJECTED, doc, kid);
        }
        return new Result(Outcome.VALID, doc, kid);
    }

    /** The server's side, for tests and fixtures. */
    public static JSONObject sign(String policyText, String kid, byte[] key) {
        return Json.obj("policy", policyText, "kid", kid, "sig", Hex.encode(EnvelopeVerifier.hmac(key, policyText)));
    }
}
