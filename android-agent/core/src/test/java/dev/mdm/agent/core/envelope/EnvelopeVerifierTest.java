package dev.mdm.agent.core.envelope;

import static org.hamcrest.MatcherAssert.assertThat;
import static org.hamcrest.Matchers.contains;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.Base64;
import java.util.Collections;

import org.json.JSONObject;
import org.junit.Test;

import dev.mdm.agent.core.util.Json;

/** The test vectors written in PROTOCOL.md itself, and the verifier's edges. */
public class EnvelopeVerifierTest {
    static final byte[] K1 = Base64.getDecoder().decode("Z/qDkBDDIoAfb1cekNp8uxgFaUI60G+wcNL9FlKlr1I=");
    static final String DEVICE = "3f2b8c1e-6a4d-4e7b-9c2a-1d5e8f0a7b3c";
    static final String PAYLOAD = "{\"id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\"device_id\":\"3f2b8c1e-6a4d-4e7b-9c2a-1d5e8f0a7b3c\",\"seq\":17,\"type\":\"launch_app\",\"params\":{\"package\":\"com.example.kiosk\"},\"issued_at\":1764086400,\"expires_at\":1764090000}";
    static final String SIG = "a530b5c665335a6b529f1eecaa509bfc5bcb08e9e8e2a4afee7d855e882c9de8";
    static final long NOW = 1764086460;

    private final Keyring keys = new Keyring(Collections.singletonList(new CommandKey("k1", K1)));

    private static String envelope(String payload, String kid, String sig) {
        return Json.obj("payload", payload, "kid", kid, "sig", sig).toString();
    }

    @Test
    public void protocol_md_valid_signature() {
        Verification v = EnvelopeVerifier.verify(envelope(PAYLOAD, "k1", SIG), keys, DEVICE, NOW);
        assertEquals(Verification.Outcome.VALID, v.outcome);
        assertEquals("7c9e6679-7425-40de-944b-e07fc1f90ae7", v.command.id);
        assertEquals(17, v.command.seq);
        assertEquals("launch_app", v.command.type);
        assertEquals("com.example.kiosk", v.command.params.optString("package"));
    }

    @Test
    public void protocol_md_uppercase_hex_is_valid() {
        assertEquals(Verification.Outcome.VALID,
                EnvelopeVerifier.verify(envelope(PAYLOAD, "k1", SIG.toUpperCase()), keys, DEVICE, NOW).outcome);
    }

    @Test
    public void protocol_md_tampered_payload_is_invalid() {
        Verification v = EnvelopeVerifier.verify(envelope(PAYLOAD.replace("kiosk", "kiosx"), "k1", SIG), keys, DEVICE, NOW);
        assertEquals(Verification.Outcome.BAD_SIGNATURE, v.outcome);
        assertNull(v.command);
    }

    @Test
    public void protocol_md_unknown_kid_is_invalid() {
        assertEquals(Verification.Outcome.UNKNOWN_KID,
                EnvelopeVerifier.verify(envelope(PAYLOAD, "k9", SIG), keys, DEVICE, NOW).outcome);
    }

    @Test
    public void protocol_md_expired_past_grace_is_rejected() {
        Verification v = EnvelopeVerifier.verify(envelope(PAYLOAD, "k1", SIG), keys, DEVICE, 1764090200);
        assertEquals(Verification.Outcome.REJECTED, v.outcome);
        assertEquals("expired", v.reason);
    }

    @Test
    public void grace_is_120_seconds_inclusive() {
        assertEquals(Verification.Outcome.VALID,
                EnvelopeVerifier.verify(envelope(PAYLOAD, "k1", SIG), keys, DEVICE, 1764090120).outcome);
        assertEquals(Verification.Outcome.REJECTED,
                EnvelopeVerifier.verify(envelope(PAYLOAD, "k1", SIG), keys, DEVICE, 1764090121).outcome);
    }

    @Test
    public void the_signature_is_checked_before_the_device_id() {
        Verification v = EnvelopeVerifier.verify(envelope(PAYLOAD.replace("kiosk", "kiosx"), "k1", SIG), keys, "other", NOW);
        assertEquals(Verification.Outcome.BAD_SIGNATURE, v.outcome);
    }

    @Test
    public void odd_length_empty_non_ascii_and_missing_fields_are_bad() {
        assertEquals(Verification.Outcome.BAD_SIGNATURE, EnvelopeVerifier.verify(envelope(PAYLOAD, "k1", SIG + "0"), keys, DEVICE, NOW).outcome);
        assertEquals(Verification.Outcome.BAD_SIGNATURE, EnvelopeVerifier.verify(envelope(PAYLOAD, "k1", ""), keys, DEVICE, NOW).outcome);
        assertEquals(Verification.Outcome.BAD_SIGNATURE, EnvelopeVerifier.verify(envelope(PAYLOAD, "k1", SIG + "00"), keys, DEVICE, NOW).outcome);
        assertEquals(Verification.Outcome.BAD_SIGNATURE,
                EnvelopeVerifier.verify(envelope(PAYLOAD, "k1", "\u0661" + SIG.substring(1)), keys, DEVICE, NOW).outcome);
        assertEquals(Verification.Outcome.MALFORMED, EnvelopeVerifier.verify("not json", keys, DEVICE, NOW).outcome);
        assertEquals(Verification.Outcome.MALFORMED, EnvelopeVerifier.verify("{\"kid\":\"k1\"}", keys, DEVICE, NOW).outcome);
        JSONObject numericSig = Json.obj("payload", PAYLOAD, "kid", "k1", "sig", 12);
        assertTrue(EnvelopeVerifier.verify(numericSig, keys, DEVICE, NOW).isBad());
    }

    @Test
    public void a_verified_payload_that_is_not_a_command_is_malformed() {
        String payload = "{\"id\":\"x\"}";
        Verification v = EnvelopeVerifier.verify(EnvelopeVerifier.sign(payload, "k1", K1), keys, DEVICE, NOW);
        assertEquals(Verification.Outcome.MALFORMED, v.outcome);
        assertTrue(v.isBad());
    }

    @Test
    public void sign_reproduces_the_protocol_md_signature() {
        assertEquals(SIG, EnvelopeVerifier.sign(PAYLOAD, "k1", K1).optString("sig"));
    }

    @Test
    public void the_keyring_holds_at_most_two_keys_and_is_replaced_entirely() {
        Keyring ring = new Keyring();
        assertTrue(ring.replaceAll(Arrays.asList(new CommandKey("b", K1), new CommandKey("a", K1), new CommandKey("c", K1))));
        assertThat(ring.kids(), contains("a", "b"));
        assertFalse(ring.replaceAll(Arrays.asList(new CommandKey("b", K1), new CommandKey("a", K1))));
        assertTrue(ring.replaceAll(Collections.singletonList(new CommandKey("z", K1))));
        assertThat(ring.kids(), contains("z"));
        assertNull(ring.get("a"));
    }

    @Test
    public void unusable_key_entries_are_skipped() {
        org.json.JSONArray a = new org.json.JSONArray();
        a.put(Json.obj("kid", "k1", "key", "Z/qDkBDDIoAfb1cekNp8uxgFaUI60G+wcNL9FlKlr1I="));
        a.put(Json.obj("kid", "k2", "key", "%%% not base64"));
        a.put(Json.obj("key", "Z/qDkBDDIoAfb1cekNp8uxgFaUI60G+wcNL9FlKlr1I="));
        assertThat(new Keyring(Keyring.parse(a)).kids(), contains("k1"));
    }
}
