package dev.mdm.agent.core;

import static org.hamcrest.MatcherAssert.assertThat;
import static org.hamcrest.Matchers.contains;
import static org.hamcrest.Matchers.greaterThan;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import org.json.JSONObject;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

import dev.mdm.agent.core.exec.ApkFetcher;
import dev.mdm.agent.core.exec.CommandRouter;
import dev.mdm.agent.core.exec.ShellAllowlist;
import dev.mdm.agent.core.net.HttpDeviceApi;
import dev.mdm.agent.core.store.Stores;
import dev.mdm.agent.core.support.FakeClock;
import dev.mdm.agent.core.support.FakeMdm;
import dev.mdm.agent.core.support.RecordingActions;
import dev.mdm.agent.core.support.RecordingEvents;
import dev.mdm.agent.core.util.Json;

/** A long command runs beside the heartbeats, and the server hears received and running first. */
public class CommandsOffTheLoopTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private FakeMdm mdm;
    private final FakeClock clock = new FakeClock();
    private final RecordingEvents events = new RecordingEvents();
    private final RecordingActions actions = new RecordingActions();
    private final ExecutorService commandThread = Executors.newSingleThreadExecutor();
    private Agent agent;

    @Before
    public void setUp() throws Exception {
        mdm = new FakeMdm();
        AgentConfig config = new AgentConfig();
        config.enrollKey = FakeMdm.ENROLL_KEY;
        config.hardwareId = "hw-1";
        config.commandExecutor = commandThread;
        config.reportProgress = true;
        HttpDeviceApi api = new HttpDeviceApi(mdm.url(), 2_000, 5_000, "test");
        CommandRouter router = new CommandRouter(actions, ShellAllowlist.defaults(), ApkFetcher.downloading(api, tmp.newFolder()));
        agent = new Agent(config, api, Stores.inMemory(), router, () -> Json.obj("battery_pct", 80), ArrayList::new,
                clock, new Random(1), events);
    }

    @After
    public void tearDown() throws Exception {
        commandThread.shutdownNow();
        mdm.close();
    }

    private List<String> statuses(String id) {
        List<String> out = new ArrayList<>();
        for (JSONObject r : mdm.resultsFor(id)) {
            out.add(r.optString("status"));
        }
        return out;
    }

    @Test
    public void heartbeats_go_on_while_a_command_runs_and_its_states_are_reported_in_order() throws Exception {
        agent.step();
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch started = new CountDownLatch(1);
        actions.duringPing = () -> {
            started.countDown();
            try {
                release.await(20, TimeUnit.SECONDS); // an install that takes minutes
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        };
        FakeMdm.Cmd ping = mdm.queue("ping", null);
        FakeMdm.Cmd after = mdm.queue("lock", null);
        clock.advanceS(34);
        agent.step();
        // The loop steps again when woken (the policy's apply at start may hold the command thread).
        for (int i = 0; i < 100 && !started.await(100, TimeUnit.MILLISECONDS); i++) {
            agent.step();
        }
        assertTrue(events.toString(), started.await(0, TimeUnit.SECONDS));
        int heartbeats = mdm.heartbeats.size();
        mdm.assignPolicy(mdm.device(), 2, Json.obj("restrictions", Json.array(java.util.Collections.singletonList("no_fun"))));
        for (int i = 0; i < 3; i++) {
            clock.advanceS(34);
            // Returns at once: the command holds its own thread, not the loop; and the policy
            // fetched meanwhile waits for that thread without making the loop spin.
            assertThat(agent.step(), greaterThan(0L));
        }
        assertThat(mdm.heartbeats.size(), greaterThan(heartbeats + 2));
        assertThat(statuses(ping.id), contains("received", "running"));
        assertThat(statuses(after.id), contains("received")); // one at a time: the next waits its turn
        release.countDown();
        for (int i = 0; i < 50 && !"succeeded".equals(after.status); i++) {
            agent.awaitWork(100);
            agent.step();
        }
        assertThat(statuses(ping.id), contains("received", "running", "succeeded"));
        assertEquals("succeeded", after.status);
        for (int i = 0; i < 50 && (mdm.lastPolicyStatus() == null || mdm.lastPolicyStatus().optLong("version") != 2); i++) {
            agent.awaitWork(100);
            agent.step();
        }
        assertEquals(2, mdm.lastPolicyStatus().optLong("version")); // applied once the thread was free
        assertThat(actions.calls(), contains("ping", "lock"));
    }

    @Test
    public void a_policy_whose_required_app_takes_long_to_install_does_not_hold_back_heartbeats() throws Exception {
        byte[] apk = "PK-slow".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        mdm.apks.put("51", apk);
        agent.step();
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch installing = new CountDownLatch(1);
        actions.afterInstallLands = () -> {
            installing.countDown();
            try {
                release.await(20, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        };
        mdm.assignPolicy(mdm.device(), 3, Json.obj("apps", Json.obj("required", Json.array(java.util.Collections.singletonList(
                Json.obj("package", "com.example.pos", "apk_id", "51", "version_code", 4,
                        "sha256", dev.mdm.agent.core.util.Sha256.hex(apk), "size", apk.length))))));
        for (int i = 0; i < 100 && !installing.await(100, TimeUnit.MILLISECONDS); i++) {
            clock.advanceS(34);
            agent.step();
        }
        assertTrue(events.toString(), installing.await(0, TimeUnit.SECONDS));
        int heartbeats = mdm.heartbeats.size();
        for (int i = 0; i < 3; i++) {
            clock.advanceS(34);
            agent.step();
        }
        assertThat(mdm.heartbeats.size(), greaterThan(heartbeats + 2));
        release.countDown();
        for (int i = 0; i < 50 && (mdm.lastPolicyStatus() == null || mdm.lastPolicyStatus().optLong("version") != 3); i++) {
            agent.awaitWork(100);
            agent.step();
        }
        assertEquals("applied", mdm.lastPolicyStatus().optJSONObject("items").optJSONObject("apps").optString("state"));
    }
}
