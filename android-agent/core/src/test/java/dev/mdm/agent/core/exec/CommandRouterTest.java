package dev.mdm.agent.core.exec;

import static org.hamcrest.MatcherAssert.assertThat;
import static org.hamcrest.Matchers.contains;
import static org.hamcrest.Matchers.empty;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.json.JSONObject;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

import dev.mdm.agent.core.envelope.Command;
import dev.mdm.agent.core.net.ApiException;
import dev.mdm.agent.core.net.ChecksumMismatchException;
import dev.mdm.agent.core.support.RecordingActions;
import dev.mdm.agent.core.util.Json;

public class CommandRouterTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private final RecordingActions actions = new RecordingActions();
    private ApkFetcher fetcher = spec -> {
        throw new IOException("no network in this test");
    };
    private final List<String> discarded = new ArrayList<>();

    private CommandRouter router() {
        return new CommandRouter(actions, ShellAllowlist.defaults(), new ApkFetcher() {
            @Override
            public File fetch(ApkSpec spec) throws IOException, ApiException {
                return fetcher.fetch(spec);
            }

            @Override
            public void discard(ApkSpec spec) {
                discarded.add(spec.apkId);
            }
        });
    }

    private CommandResult run(String type, JSONObject params) throws RetryLaterException {
        return router().execute(new Command("id-1", "dev", 1, type, params, 0, 60));
    }

    private static final String SHA = "0123456789012345678901234567890123456789012345678901234567890123";

    private static JSONObject install(long versionCode) {
        return Json.obj("apk_id", "a1", "package", "com.a.b", "version_code", versionCode, "sha256", SHA, "size", 3);
    }

    /** Each fetch a new file (the router deletes it after the install). */
    private void fetchesAFile() {
        fetcher = spec -> {
            File apk = tmp.newFile();
            Files.write(apk.toPath(), new byte[] {1, 2, 3});
            return apk;
        };
    }

    private void assertRejected(String reason, String type, JSONObject params) throws RetryLaterException {
        CommandResult r = run(type, params);
        assertEquals(type + " " + params, "rejected", r.status);
        assertEquals(type + " " + params, reason, r.reason);
    }

    @Test
    public void each_type_reaches_its_executor() throws Exception {
        assertEquals("succeeded", run("ping", new JSONObject()).status);
        run("launch_app", Json.obj("package", "com.example.kiosk", "activity", ".MainActivity"));
        run("reboot", new JSONObject());
        run("lock", new JSONObject());
        run("shell", Json.obj("argv", Arrays.asList("uname", "-a")));
        run("uninstall_app", Json.obj("package", "com.example.old"));
        run("clear_app_data", Json.obj("package", "com.example.kiosk"));
        run("wifi_configure", Json.obj("ssid", "Caf\u00e9 \u2615 5G", "security", "wpa2", "password", "p\u00e4ssw\u00f6rd", "hidden", false));
        run("wifi_configure", Json.obj("ssid", "guest", "security", "open"));
        assertThat(actions.calls(), contains("ping", "launch_app com.example.kiosk .MainActivity", "reboot", "lock",
                "shell uname -a", "uninstall_app com.example.old", "clear_app_data com.example.kiosk",
                "wifi_configure Caf\u00e9 \u2615 5G wpa2", "wifi_configure guest open"));
    }

    @Test
    public void an_unknown_type_is_unsupported() throws Exception {
        assertRejected("unsupported_type", "format_disk", new JSONObject());
        assertRejected("unsupported_type", "", new JSONObject());
    }

    @Test
    public void bad_params_are_rejected_before_anything_runs() throws Exception {
        assertRejected("bad_params", "launch_app", new JSONObject());
        assertRejected("bad_params", "launch_app", Json.obj("package", 5));
        assertRejected("bad_params", "launch_app", Json.obj("package", "com.example; rm -rf /"));
        assertRejected("bad_params", "launch_app", Json.obj("package", "com.example.kiosk", "activity", 3));
        assertRejected("bad_params", "uninstall_app", Json.obj("package", "nodots"));
        assertRejected("bad_params", "clear_app_data", Json.obj("package", ""));
        assertRejected("bad_params", "shell", new JSONObject());
        assertRejected("bad_params", "shell", Json.obj("argv", Arrays.asList()));
        assertRejected("bad_params", "shell", Json.obj("argv", "getprop"));
        assertRejected("bad_params", "shell", Json.obj("argv", Arrays.asList("getprop", 1)));
        assertRejected("bad_params", "wifi_configure", Json.obj("ssid", "x", "security", "wep", "password", "12345678"));
        assertRejected("bad_params", "wifi_configure", Json.obj("ssid", "x", "security", "wpa2", "password", "short"));
        assertRejected("bad_params", "wifi_configure", Json.obj("ssid", "x", "security", "open", "password", "something"));
        assertRejected("bad_params", "wifi_configure", Json.obj("ssid", "", "security", "open"));
        assertRejected("bad_params", "wifi_configure", Json.obj("ssid", "x", "security", "open", "hidden", "yes"));
        assertRejected("bad_params", "wifi_configure", Json.obj("ssid", "123456789012345678901234567890123", "security", "open"));
        assertRejected("bad_params", "install_apk", Json.obj("apk_id", "a", "package", "com.a.b", "version_code", 1, "sha256", "xyz", "size", 3));
        assertRejected("bad_params", "install_apk", Json.obj("apk_id", "a", "package", "com.a.b", "version_code", 1.5,
                "sha256", "0123456789012345678901234567890123456789012345678901234567890123", "size", 3));
        assertRejected("bad_params", "install_apk", Json.obj("package", "com.a.b", "version_code", 1,
                "sha256", "0123456789012345678901234567890123456789012345678901234567890123", "size", 3));
        assertThat(actions.calls(), empty());
    }

    @Test
    public void shell_argv_must_start_with_an_allowlisted_prefix_word_by_word() throws Exception {
        assertRejected("not_allowed", "shell", Json.obj("argv", Arrays.asList("rm", "-rf", "/data")));
        assertRejected("not_allowed", "shell", Json.obj("argv", Arrays.asList("pm", "uninstall", "com.a")));
        assertRejected("not_allowed", "shell", Json.obj("argv", Arrays.asList("pm list", "packages")));
        assertRejected("not_allowed", "shell", Json.obj("argv", Arrays.asList("pm", "listx")));
        assertRejected("not_allowed", "shell", Json.obj("argv", Arrays.asList("sh", "-c", "getprop")));
        assertEquals("succeeded", run("shell", Json.obj("argv", Arrays.asList("getprop", "ro.build.version.sdk"))).status);
        assertThat(actions.calls(), contains("shell getprop ro.build.version.sdk"));
    }

    @Test
    public void the_allowlist_parses_from_text() {
        ShellAllowlist a = ShellAllowlist.parse("getprop;  pm list ; ");
        assertTrue(a.allows(Arrays.asList("pm", "list", "packages")));
        assertFalse(a.allows(Arrays.asList("pm")));
        assertFalse(a.allows(Arrays.asList()));
        assertEquals(2, a.prefixes().size());
    }

    @Test
    public void an_executor_exception_is_a_failed_result() throws Exception {
        CommandRouter router = new CommandRouter(new RecordingActions() {
            @Override
            public CommandResult lock() {
                throw new SecurityException("not device owner");
            }
        }, ShellAllowlist.defaults(), null);
        CommandResult r = router.execute(new Command("i", "d", 1, "lock", null, 0, 1));
        assertEquals("failed", r.status);
        assertEquals("SecurityException: not device owner", r.error);
        assertNull(r.reason);
    }

    @Test
    public void install_apk_retries_later_on_network_trouble_and_fails_on_a_bad_checksum() throws Exception {
        JSONObject p = Json.obj("apk_id", "a1", "package", "com.a.b", "version_code", 2,
                "sha256", "0123456789012345678901234567890123456789012345678901234567890123", "size", 3);
        try {
            run("install_apk", p);
            fail();
        } catch (RetryLaterException expected) {
            assertEquals(-1, expected.retryAfterS);
        }
        fetcher = spec -> {
            throw new ApiException(503, "busy", "", 9, null);
        };
        try {
            run("install_apk", p);
            fail();
        } catch (RetryLaterException expected) {
            assertEquals(9, expected.retryAfterS);
        }
        fetcher = spec -> {
            throw new ChecksumMismatchException("sha256 differs");
        };
        assertEquals("failed", run("install_apk", p).status);
        fetcher = spec -> {
            throw new ApiException(404, "not_found", "gone", -1, null);
        };
        assertEquals("failed", run("install_apk", p).status);
        assertThat(actions.calls(), empty());
    }

    @Test
    public void an_install_succeeds_with_the_version_code_read_from_the_package_manager() throws Exception {
        fetchesAFile();
        CommandResult r = run("install_apk", install(42));
        assertEquals("succeeded", r.status);
        assertEquals("installed com.a.b versionCode 42 (package manager)", r.output);
    }

    @Test
    public void an_install_the_installer_calls_done_fails_when_the_package_manager_disagrees() throws Exception {
        fetchesAFile();
        actions.installLands = false; // the installer says done, the package manager has no such version
        CommandResult absent = run("install_apk", install(42));
        assertEquals("failed", absent.status);
        assertEquals("the package manager reports com.a.b not installed, not versionCode 42", absent.error);
        actions.installed.put("com.a.b", 41L);
        CommandResult other = run("install_apk", install(42));
        assertEquals("failed", other.status);
        assertEquals("the package manager reports com.a.b versionCode 41, not versionCode 42", other.error);
    }

    @Test
    public void an_installer_failure_is_reported_as_the_installer_said_it() throws Exception {
        fetchesAFile();
        CommandRouter router = new CommandRouter(new RecordingActions() {
            @Override
            public CommandResult installApk(File apk, ApkSpec spec) {
                return CommandResult.failed(4, "INSTALL_FAILED_VERSION_DOWNGRADE", "install failed (status 4)");
            }
        }, ShellAllowlist.defaults(), spec -> fetcher.fetch(spec));
        CommandResult r = router.execute(new Command("i", "d", 1, "install_apk", install(1), 0, 60));
        assertEquals("failed", r.status);
        assertEquals(Integer.valueOf(4), r.exitCode);
        assertEquals("INSTALL_FAILED_VERSION_DOWNGRADE", r.output);
    }

    @Test
    public void after_a_restart_an_install_is_what_the_package_manager_reports() {
        Command c = new Command("i", "d", 1, "install_apk", install(7), 0, 60);
        CommandRouter router = router();
        assertNull("not installed, attempts left: runs again", router.afterRestart(c, true));
        assertThat(discarded, empty()); // the partial download stays for the resume
        CommandResult exhausted = router.afterRestart(c, false);
        assertEquals("failed", exhausted.status);
        assertEquals("interrupted by restarts during its download or install, attempts exhausted: "
                + "the package manager reports com.a.b not installed, not versionCode 7", exhausted.error);
        actions.installed.put("com.a.b", 7L);
        CommandResult confirmed = router.afterRestart(c, true);
        assertEquals("succeeded", confirmed.status);
        assertEquals("installed com.a.b versionCode 7 (package manager), confirmed after the agent restarted", confirmed.output);
        assertThat(discarded, contains("a1", "a1"));
        assertThat(actions.calls(), empty()); // nothing installed again
    }

    @Test
    public void after_a_restart_a_reboot_is_done_and_anything_else_failed() {
        CommandRouter router = router();
        assertEquals("succeeded", router.afterRestart(new Command("i", "d", 1, "reboot", null, 0, 60), true).status);
        CommandResult shell = router.afterRestart(new Command("i", "d", 1, "shell", null, 0, 60), true);
        assertEquals("failed", shell.status);
        assertEquals("interrupted: the agent stopped while the command ran", shell.error);
    }

    @Test
    public void results_serialize_as_the_protocol_wants() {
        assertEquals("{\"status\":\"rejected\",\"reason\":\"bad_params\"}", CommandResult.rejected("bad_params", null).toJson().toString());
        List<String> keys = Arrays.asList("status", "exit_code", "output");
        JSONObject ok = CommandResult.succeeded(0, "pong").toJson();
        for (String k : keys) {
            assertTrue(ok.has(k));
        }
        StringBuilder big = new StringBuilder();
        for (int i = 0; i < 70_000; i++) {
            big.append('x');
        }
        assertEquals(CommandResult.MAX_OUTPUT_CHARS, CommandResult.succeeded(0, big.toString()).output.length());
    }
}
