package dev.mdm.agent.core.exec;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.json.JSONArray;
import org.junit.Test;

import dev.mdm.agent.core.util.Json;

/**
 * The built-in allowlist is the server's read-only list (shell-read-only.json, which
 * tests/test_agent_contract.py holds against commands/services/shell_allowlist.py).
 */
public class ShellAllowlistTest {
    private static List<List<String>> contract() throws IOException {
        try (InputStream in = ShellAllowlistTest.class.getResourceAsStream("/shell-read-only.json")) {
            assertNotNull("shell-read-only.json is on the test classpath", in);
            JSONArray prefixes = Json.parseObjectOrNull(new String(in.readAllBytes(), StandardCharsets.UTF_8))
                    .optJSONArray("prefixes");
            List<List<String>> out = new ArrayList<>();
            for (int i = 0; i < prefixes.length(); i++) {
                out.add(Json.strings(Json.obj("p", prefixes.opt(i)), "p"));
            }
            return out;
        }
    }

    @Test
    public void the_built_in_list_is_the_servers_read_only_list() throws IOException {
        assertEquals(contract(), ShellAllowlist.defaults().prefixes());
    }

    @Test
    public void the_built_in_list_allows_the_stock_diagnostics_and_nothing_that_needs_the_shell_user() {
        ShellAllowlist a = ShellAllowlist.defaults();
        for (List<String> argv : Arrays.asList(Arrays.asList("getprop"), Arrays.asList("df", "-h"), Arrays.asList("uptime"),
                Arrays.asList("id"), Arrays.asList("uname", "-a"))) {
            assertTrue(argv.toString(), a.allows(argv));
        }
        for (List<String> argv : Arrays.asList(Arrays.asList("dumpsys", "battery"), Arrays.asList("pm", "list", "packages"),
                Arrays.asList("settings", "get", "global", "auto_time"), Arrays.asList("cat", "/proc/meminfo"),
                Arrays.asList("am", "start", "-a", "android.settings.SYSTEM_UPDATE_SETTINGS"), Arrays.asList("sh", "-c", "id"))) {
            assertFalse(argv.toString(), a.allows(argv));
        }
    }
}
