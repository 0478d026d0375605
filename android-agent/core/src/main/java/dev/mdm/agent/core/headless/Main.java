package dev.mdm.agent.core.headless;

import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.SecureRandom;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;

import dev.mdm.agent.core.Agent;
import dev.mdm.agent.core.AgentConfig;
import dev.mdm.agent.core.Version;
import dev.mdm.agent.core.clock.Clock;
import dev.mdm.agent.core.exec.ApkFetcher;
import dev.mdm.agent.core.exec.CommandRouter;
import dev.mdm.agent.core.exec.ShellAllowlist;
import dev.mdm.agent.core.net.HttpDeviceApi;
import dev.mdm.agent.core.store.FileStores;
import dev.mdm.agent.core.store.Stores;
import dev.mdm.agent.core.util.Json;

/**
 * The agent core without Android: a simulated device against a real server, printing one JSON
 * event per line on stdout (see android-agent/README.md). Used by the end-to-end tests.
 */
public final class Main {
    static final String USAGE = "usage: java -cp <classes>:<org.json jar> dev.mdm.agent.core.headless.Main\n"
            + "  --server URL --enroll-key KEY [--hardware-id ID] [--state-dir DIR] [--duration-s N]\n"
            + "  [--inject-envelope-file F] [--fail-type TYPE] [--latency-ms N] [--backoff-cap-s N]\n"
            + "  [--shell-allow 'getprop; pm list'] [--model M] [--own-package PKG]\n"
            + "  [--installed 'dev.mdm.agent=1; com.example.app=7'] [--adb-grants usage_access,battery_optimization]";
    /** Exit status when the simulated Android kills the process (128 + SIGKILL, as a shell reports it). */
    static final int KILLED_EXIT = 137;
    private static final java.util.regex.Pattern PACKAGE = java.util.regex.Pattern.compile(
            "[A-Za-z][A-Za-z0-9_]*(\\.[A-Za-z][A-Za-z0-9_]*)+");

    private Main() {}

    static final class Options {
        String server;
        String enrollKey;
        String hardwareId;
        File stateDir;
        long durationS = -1;
        File injectFile;
        String failType;
        long latencyMs = 200;
        long backoffCapS = 30;
        String shellAllow;
        String model = "Headless Agent";
        String ownPackage = SimulatedDevice.AGENT_PACKAGE;
        Map<String, Long> installed = new LinkedHashMap<>();
        /** What the provisioning script granted with adb: a Device Owner cannot grant these itself. */
        java.util.Set<String> adbGrants = new java.util.TreeSet<>();
    }

    static Options parse(String[] args) {
        Options o = new Options();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help")) {
                throw new IllegalArgumentException("");
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(a + " needs a value");
            }
            String v = args[++i];
            switch (a) {
                case "--server": o.server = v; break;
                case "--enroll-key": o.enrollKey = v; break;
                case "--hardware-id": o.hardwareId = v; break;
                case "--state-dir": o.stateDir = new File(v); break;
                case "--duration-s": o.durationS = positive(a, v); break;
                case "--inject-envelope-file": o.injectFile = new File(v); break;
                case "--fail-type": o.failType = v; break;
                case "--latency-ms": o.latencyMs = positive(a, v); break;
                case "--backoff-cap-s": o.backoffCapS = Math.max(1, positive(a, v)); break;
                case "--shell-allow": o.shellAllow = v; break;
                case "--model": o.model = v; break;
                case "--own-package": o.ownPackage = packageName(a, v); break;
                case "--installed": o.installed = installed(v); break;
                case "--adb-grants": o.adbGrants = adbGrants(v); break;
                default: throw new IllegalArgumentException("unknown option " + a);
            }
        }
        if (o.server == null || o.enrollKey == null) {
            throw new IllegalArgumentException("--server and --enroll-key are required");
        }
        return o;
    }

    private static String packageName(String option, String value) {
        if (!PACKAGE.matcher(value).matches()) {
            throw new IllegalArgumentException(option + " needs a package name, not " + value);
        }
        return value;
    }

    /** "pkg=code; pkg=code": what the simulated package manager holds on a first start. */
    static Map<String, Long> installed(String value) {
        Map<String, Long> out = new LinkedHashMap<>();
        for (String item : value.split(";")) {
            item = item.trim();
            if (item.isEmpty()) {
                continue;
            }
            int eq = item.indexOf('=');
            if (eq < 0) {
                throw new IllegalArgumentException("--installed takes package=versionCode items, not " + item);
            }
            out.put(packageName("--installed", item.substring(0, eq).trim()), positive("--installed", item.substring(eq + 1).trim()));
        }
        return out;
    }

    static java.util.Set<String> adbGrants(String value) {
        java.util.Set<String> out = new java.util.TreeSet<>();
        for (String g : value.split(",")) {
            g = g.trim();
            if (g.equals("usage_access") || g.equals("battery_optimization")) {
                out.add(g);
            } else if (!g.isEmpty()) {
                throw new IllegalArgumentException("--adb-grants takes usage_access and battery_optimization, not " + g);
            }
        }
        return out;
    }

    private static long positive(String name, String value) {
        try {
            long n = Long.parseLong(value);
            if (n >= 0) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new IllegalArgumentException(name + " needs a non-negative integer");
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    static int run(String[] args, PrintStream out, PrintStream err) {
        return run(args, out, err, () -> Runtime.getRuntime().halt(KILLED_EXIT), true);
    }

    /**
     * halt: how the simulated Android kills the process. Tests end the agent's thread instead,
     * which ends the process only if commands run on that thread: then commandThread is false.
     */
    static int run(String[] args, PrintStream out, PrintStream err, Runnable halt, boolean commandThread) {
        Options o;
        try {
            o = parse(args);
        } catch (IllegalArgumentException e) {
            if (!e.getMessage().isEmpty()) {
                err.println(e.getMessage());
            }
            err.println(USAGE);
            return e.getMessage().isEmpty() ? 0 : 2;
        }
        JsonLineEvents events = new JsonLineEvents(out);
        try {
            Agent agent = build(o, events, halt, commandThread);
            if (o.injectFile != null) {
                // Queued now, verified right after the first heartbeat (nothing is before it).
                String text = new String(Files.readAllBytes(o.injectFile.toPath()), StandardCharsets.UTF_8).trim();
                agent.addEnvelope(text, "inject");
            }
            Thread stopper = new Thread(agent::stop, "agent-shutdown");
            Runtime.getRuntime().addShutdownHook(stopper);
            if (o.durationS >= 0) {
                Thread timer = new Thread(() -> {
                    try {
                        Thread.sleep(o.durationS * 1000);
                    } catch (InterruptedException e) {
                        return;
                    }
                    agent.stop();
                }, "agent-duration");
                timer.setDaemon(true);
                timer.start();
            }
            agent.run();
            try {
                Runtime.getRuntime().removeShutdownHook(stopper);
            } catch (IllegalStateException ignored) {
                // already shutting down
            }
            return 0;
        } catch (IOException | RuntimeException e) {
            events.emit("error", Json.obj("op", "startup", "message", e.toString()));
            return 1;
        }
    }

    static Agent build(Options o, JsonLineEvents events, Runnable halt, boolean commandThread) throws IOException {
        HttpDeviceApi api = new HttpDeviceApi(o.server, 10_000, 20_000, "mdm-agent-headless/" + Version.NAME);
        Stores stores = o.stateDir == null ? Stores.inMemory() : FileStores.open(o.stateDir);
        File apkDir = o.stateDir != null ? new File(o.stateDir, "apks")
                : Files.createTempDirectory("mdm-agent-apks").toFile();
        AgentConfig config = new AgentConfig();
        config.enrollKey = o.enrollKey;
        config.hardwareId = o.hardwareId;
        if (config.hardwareId == null && stores.state.load().hardwareId == null) {
            config.hardwareId = "headless-" + UUID.randomUUID();
        }
        config.backoffCapMs = o.backoffCapS * 1000;
        config.refusedRetryMs = Math.min(config.refusedRetryMs, config.backoffCapMs);
        // The runner's waits are compressed for tests: a refusal waits the backoff cap, not hours.
        config.permanentRefusalMs = Math.min(config.permanentRefusalMs, config.backoffCapMs);
        config.permanentRefusalCapMs = Math.min(config.permanentRefusalCapMs, config.backoffCapMs);
        config.reportProgress = true;
        if (commandThread) {
            config.commandExecutor = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "agent-command");
                t.setDaemon(true); // a command never keeps the runner alive past --duration-s
                return t;
            });
        }
        config.deviceInfo = Json.obj("model", o.model, "manufacturer", "mdm", "android_version", "headless");
        SimulatedDevice device = new SimulatedDevice(o.latencyMs, o.failType, o.stateDir, o.ownPackage, o.installed,
                (pkg, versionCode) -> {
                    // Android kills the process of a package it replaces, at once: no result, no
                    // shutdown hooks. The event is the simulator's own, so the tests see why it ended.
                    events.emit("killed", Json.obj("reason", "package_replaced", "package", pkg, "version_code", versionCode));
                    halt.run();
                }, o.adbGrants);
        ShellAllowlist allowlist = o.shellAllow == null ? ShellAllowlist.defaults() : ShellAllowlist.parse(o.shellAllow);
        CommandRouter router = new CommandRouter(device, allowlist, ApkFetcher.downloading(api, apkDir));
        return new Agent(config, api, stores, router, device.policy(), device, device, Clock.SYSTEM, new SecureRandom(), events);
    }
}
