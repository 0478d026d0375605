package dev.mdm.agent.core.headless;

import static org.hamcrest.MatcherAssert.assertThat;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.greaterThanOrEqualTo;
import static org.hamcrest.Matchers.hasSize;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import org.json.JSONObject;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

import dev.mdm.agent.core.envelope.EnvelopeVerifier;
import dev.mdm.agent.core.support.FakeMdm;
import dev.mdm.agent.core.util.Json;

/** The headless runner as the e2e tests use it: arguments in, one JSON event per line out. */
public class MainTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private FakeMdm mdm;
    private final ByteArrayOutputStream stdout = new ByteArrayOutputStream();
    private final AtomicInteger exit = new AtomicInteger(-1);
    private Thread runner;

    @Before
    public void setUp() throws Exception {
        mdm = new FakeMdm();
    }

    @After
    public void tearDown() throws Exception {
        if (runner != null) {
            runner.join(20_000);
        }
        mdm.close();
    }

    private void start(String... args) {
        PrintStream out = new PrintStream(stdout, true, StandardCharsets.UTF_8);
        runner = new Thread(() -> exit.set(Main.run(args, out, System.err)));
        runner.start();
    }

    private List<JSONObject> lines() {
        String text;
        synchronized (stdout) {
            text = new String(stdout.toByteArray(), StandardCharsets.UTF_8);
        }
        List<JSONObject> out = new ArrayList<>();
        for (String line : text.split("\n")) {
            if (!line.isEmpty()) {
                JSONObject o = Json.parseObjectOrNull(line);
                assertNotNull("every stdout line is a JSON object: " + line, o);
                out.add(o);
            }
        }
        return out;
    }

    private List<JSONObject> named(String event) {
        List<JSONObject> out = new ArrayList<>();
        for (JSONObject o : lines()) {
            if (event.equals(o.optString("event"))) {
                out.add(o);
            }
        }
        return out;
    }

    private JSONObject await(String event, int count) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 15_000;
        while (System.currentTimeMillis() < deadline) {
            List<JSONObject> got = named(event);
            if (got.size() >= count) {
                return got.get(count - 1);
            }
            Thread.sleep(20);
        }
        throw new AssertionError("no " + event + " #" + count + " in:\n" + lines());
    }

    /** The results posted for id without the received/running progress reports. */
    private List<JSONObject> finals(String id) {
        List<JSONObject> out = new ArrayList<>();
        for (JSONObject r : mdm.resultsFor(id)) {
            if (!r.optString("status").equals("received") && !r.optString("status").equals("running")) {
                out.add(r);
            }
        }
        return out;
    }

    private int finish() throws InterruptedException {
        runner.join(20_000);
        assertFalse("the runner stops after --duration-s", runner.isAlive());
        return exit.get();
    }

    @Test
    public void it_enrolls_runs_commands_and_reports_them_as_json_lines() throws Exception {
        List<FakeMdm.Cmd> queued = new ArrayList<>();
        mdm.afterEnroll = d -> {
            queued.add(mdm.queue(d, "ping", null, mdm.now, mdm.now + 600));
            queued.add(mdm.queue(d, "lock", null, mdm.now, mdm.now + 600));
        };
        File state = tmp.newFolder();
        start("--server", mdm.url(), "--enroll-key", FakeMdm.ENROLL_KEY, "--hardware-id", "hw-headless",
                "--state-dir", state.getPath(), "--duration-s", "2", "--latency-ms", "10", "--fail-type", "lock");
        assertEquals(0, finish());
        JSONObject enrolled = named("enrolled").get(0);
        assertEquals(mdm.device().id, enrolled.optString("device_id"));
        JSONObject hb = named("heartbeat").get(0);
        assertEquals(200, hb.optInt("status"));
        assertEquals(0, hb.optInt("bad_envelopes"));
        assertThat(named("command_verified"), hasSize(2));
        List<JSONObject> executed = named("command_executed");
        assertEquals("succeeded", executed.get(0).optString("status"));
        assertEquals("failed", executed.get(1).optString("status"));
        List<JSONObject> posted = named("result_posted");
        assertEquals(queued.get(0).id, posted.get(0).optString("id"));
        assertEquals("succeeded", posted.get(0).optString("status"));
        assertEquals("failed", queued.get(1).status);
        assertThat(named("stopped"), hasSize(1));
        assertEquals("hw-headless", mdm.device().hardwareId);
        assertTrue(new File(state, "state.json").isFile());
        for (JSONObject line : lines()) {
            assertTrue(line.has("ts"));
        }
    }

    @Test
    public void the_headless_agent_applies_a_policy_reports_it_and_heartbeats_the_v1_1_fields() throws Exception {
        mdm.afterEnroll = d -> mdm.assignPolicy(d, 4, Json.obj(
                "kiosk", Json.obj("package", "com.example.kiosk", "lock_task", true, "relaunch", true),
                "settings", Json.obj("stay_on_while_plugged", true, "adb_enabled", true),
                "shell_allowlist", Json.array(java.util.Collections.singletonList(Json.array(java.util.Arrays.asList("getprop")))),
                "teleport", true));
        File state = tmp.newFolder();
        start("--server", mdm.url(), "--enroll-key", FakeMdm.ENROLL_KEY, "--hardware-id", "hw-policy",
                "--state-dir", state.getPath(), "--duration-s", "3", "--latency-ms", "10");
        await("policy_status_posted", 1);
        assertEquals(0, finish());
        JSONObject status = mdm.lastPolicyStatus();
        assertEquals(4, status.optLong("version"));
        JSONObject items = status.optJSONObject("items");
        assertEquals("applied", items.optJSONObject("kiosk").optString("state"));
        assertEquals("applied", items.optJSONObject("shell_allowlist").optString("state"));
        assertEquals("unsupported", items.optJSONObject("settings").optString("state")); // adb_enabled: not the server's
        assertEquals("unsupported", items.optJSONObject("teleport").optString("state"));
        assertTrue(new File(state, "policy.json").isFile());
        // The heartbeat after the apply (the runner's first one went before the policy was known).
        mdm.intervalS = 5;
        start("--server", mdm.url(), "--enroll-key", FakeMdm.ENROLL_KEY, "--state-dir", state.getPath(),
                "--duration-s", "2", "--latency-ms", "10");
        assertEquals(0, finish());
        JSONObject hb = mdm.heartbeats.get(mdm.heartbeats.size() - 1);
        assertEquals(4, hb.optLong("policy_version"));
        assertTrue(hb.optBoolean("lock_task_active"));
        assertEquals("14", hb.optString("os_version"));
        assertFalse(hb.optBoolean("usage_access"));
    }

    @Test
    public void an_injected_tampered_envelope_is_counted_after_the_first_heartbeat() throws Exception {
        File env = tmp.newFile("env.json");
        String payload = Json.obj("id", "11111111-2222-4333-8444-555555555555", "device_id", "x", "seq", 1,
                "type", "reboot", "params", new JSONObject(), "issued_at", 1, "expires_at", 2).toString();
        Files.write(env.toPath(), EnvelopeVerifier.sign(payload, "k1", new byte[32]).toString().getBytes(StandardCharsets.UTF_8));
        start("--server", mdm.url(), "--enroll-key", FakeMdm.ENROLL_KEY, "--duration-s", "2",
                "--inject-envelope-file", env.getPath());
        assertEquals(0, finish());
        List<String> order = new ArrayList<>();
        for (JSONObject o : lines()) {
            order.add(o.optString("event"));
        }
        assertTrue(order.indexOf("bad_envelope") > order.indexOf("heartbeat"));
        JSONObject bad = named("bad_envelope").get(0);
        assertEquals("inject", bad.optString("source"));
        assertThat(bad.optString("reason"), containsString("kid"));
        assertEquals(1, named("heartbeat").get(1).optInt("bad_envelopes"));
        assertThat(mdm.results, hasSize(0));
    }

    @Test
    public void it_backs_off_while_the_server_is_unreachable_and_loses_no_result() throws Exception {
        List<FakeMdm.Cmd> queued = new ArrayList<>();
        mdm.afterEnroll = d -> queued.add(mdm.queue(d, "ping", null, mdm.now, mdm.now + 600));
        start("--server", mdm.url(), "--enroll-key", FakeMdm.ENROLL_KEY, "--duration-s", "8",
                "--latency-ms", "500", "--backoff-cap-s", "1");
        await("command_verified", 1);
        mdm.down = true; // the ping is running; its result cannot be posted
        await("backoff", 2);
        mdm.down = false;
        JSONObject posted = await("result_posted", 1);
        assertEquals(queued.get(0).id, posted.optString("id"));
        assertEquals(0, finish());
        JSONObject backoff = named("backoff").get(0);
        assertEquals("network", backoff.optString("reason"));
        assertTrue(backoff.has("seconds"));
        assertThat(finals(queued.get(0).id), hasSize(1)); // besides received and running
        assertThat(named("backoff").size(), greaterThanOrEqualTo(2));
    }

    @Test
    public void a_bad_command_line_prints_usage_and_exits_2() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {"--server", "http://x"}, new PrintStream(stdout), new PrintStream(err));
        assertEquals(2, code);
        assertThat(new String(err.toByteArray(), StandardCharsets.UTF_8), containsString("--enroll-key"));
        assertThat(lines(), hasSize(0));
    }

    /** How the test stands in for Runtime.halt: the agent's thread ends at once, nothing else runs. */
    private static final class Halted extends Error {
        private static final long serialVersionUID = 1L;
    }

    @Test
    public void an_update_of_its_own_package_ends_the_process_and_the_next_start_reports_success() throws Exception {
        byte[] apk = new byte[3_000];
        new java.util.Random(16).nextBytes(apk);
        mdm.apks.put("agent-v2", apk);
        List<FakeMdm.Cmd> queued = new ArrayList<>();
        mdm.afterEnroll = d -> queued.add(mdm.queue(d, "install_apk", Json.obj("apk_id", "agent-v2", "package",
                "dev.mdm.agent", "version_code", 2, "sha256", dev.mdm.agent.core.util.Sha256.hex(apk), "size", apk.length),
                mdm.now, mdm.now + 600));
        File state = tmp.newFolder();
        String[] args = {"--server", mdm.url(), "--enroll-key", FakeMdm.ENROLL_KEY, "--hardware-id", "hw-self",
                "--state-dir", state.getPath(), "--latency-ms", "10", "--installed", "dev.mdm.agent=1; com.example.app=7"};
        PrintStream out = new PrintStream(stdout, true, StandardCharsets.UTF_8);
        Thread first = new Thread(() -> Main.run(args, out, System.err, () -> {
            throw new Halted();
        }, false));
        first.setUncaughtExceptionHandler((t, e) -> { }); // the Halted error is the expected end
        first.start();
        first.join(20_000);
        assertFalse("the install ended the process", first.isAlive());
        JSONObject killed = named("killed").get(0);
        assertEquals("package_replaced", killed.optString("reason"));
        assertEquals(2, killed.optLong("version_code"));
        assertThat(finals(queued.get(0).id), hasSize(0));
        assertThat(named("stopped"), hasSize(0));

        String[] again = java.util.Arrays.copyOf(args, args.length + 2);
        again[args.length] = "--duration-s";
        again[args.length + 1] = "2";
        start(again);
        assertEquals(0, finish());
        JSONObject reconciled = named("reconciled").get(0);
        assertEquals(queued.get(0).id, reconciled.optString("id"));
        assertEquals("succeeded", reconciled.optString("outcome"));
        assertEquals("succeeded", queued.get(0).status);
        assertEquals("installed dev.mdm.agent versionCode 2 (package manager), confirmed after the agent restarted",
                finals(queued.get(0).id).get(0).optString("output"));
        assertTrue(new File(state, "packages.json").isFile());
        assertThat(Files.readString(new File(state, "packages.json").toPath()), containsString("\"com.example.app\":7"));
    }

    @Test
    public void installed_and_own_package_are_checked() {
        assertEquals(2, Main.run(new String[] {"--server", "http://x", "--enroll-key", "k", "--installed", "dev.mdm.agent"},
                new PrintStream(stdout), new PrintStream(new ByteArrayOutputStream())));
        assertEquals(2, Main.run(new String[] {"--server", "http://x", "--enroll-key", "k", "--own-package", "nodots"},
                new PrintStream(stdout), new PrintStream(new ByteArrayOutputStream())));
        assertEquals(Long.valueOf(7), Main.installed(" a.b=7 ;c.d=1;").get("a.b"));
    }
}
