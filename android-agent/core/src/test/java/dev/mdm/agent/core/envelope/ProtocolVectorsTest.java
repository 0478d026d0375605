package dev.mdm.agent.core.envelope;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

import org.json.JSONObject;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.junit.runners.Parameterized;
import org.junit.runners.Parameterized.Parameters;

import dev.mdm.agent.core.util.Json;

/**
 * Every vector of protocol-vectors.json (written by the server's own signer, commands/vectors.py):
 * the Java verifier must agree with the server on each, with that vector's server_time and device_id.
 */
@RunWith(Parameterized.class)
public class ProtocolVectorsTest {
    private final String name;
    private final JSONObject vector;

    public ProtocolVectorsTest(String name, JSONObject vector) {
        this.name = name;
        this.vector = vector;
    }

    static JSONObject file() throws IOException {
        try (InputStream in = ProtocolVectorsTest.class.getResourceAsStream("/protocol-vectors.json")) {
            assertNotNull("protocol-vectors.json is on the test classpath", in);
            return Json.parseObjectOrNull(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
    }

    static Keyring keyring(JSONObject file) {
        return new Keyring(Keyring.parse(file.optJSONArray("keys")));
    }

    @Parameters(name = "{0}")
    public static Collection<Object[]> vectors() throws IOException {
        List<Object[]> out = new ArrayList<>();
        for (JSONObject v : Json.objects(file().optJSONArray("vectors"))) {
            out.add(new Object[] {v.optString("name"), v});
        }
        if (out.size() < 10) {
            throw new AssertionError("the vector file lost vectors: " + out.size());
        }
        return out;
    }

    @Test
    public void the_verifier_agrees_with_the_server_signer() throws IOException {
        Verification v = EnvelopeVerifier.verify(vector.optJSONObject("envelope").toString(), keyring(file()),
                vector.optString("device_id"), vector.optLong("server_time"));
        String expect = vector.optString("expect");
        assertEquals(name, expect, v.name());
        if (expect.equals("rejected")) {
            assertEquals(name, vector.optString("reason"), v.reason);
            assertNotNull(v.command); // reported against its verified id
        } else if (!expect.equals("valid")) {
            assertNull(name, v.command); // never reported against an unverified id
        }
    }
}
