package dev.mdm.agent.core.headless;

import java.io.IOException;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import dev.mdm.agent.core.exec.CommandResult;

/**
 * What a {@code shell} command does on Android 14 when the agent runs it (PROTOCOL.md v1.1): as the
 * app's own uid in the untrusted_app SELinux domain, never as adb's shell user or root. What reads
 * through system calls works (getprop, and the toybox programs of {@link SimulatedToybox}: id,
 * uptime, df, uname); what goes through a system service's shell command or dumps one is refused
 * as Android refuses it, with its messages: settings get and put (the settings service passes no
 * calling package for a uid that is neither shell nor root, and a write needs
 * WRITE_SECURE_SETTINGS), dumpsys (DUMP; it still exits 0, as dumpsys does), cmd wifi (root and
 * shell only), pm install/grant/clear (their signature permissions), am start (exported
 * activities only); su does not exist on a user build. pm list packages answers, filtered by
 * package visibility (a Device Owner declares QUERY_ALL_PACKAGES); it is on no allowlist all the
 * same (the inventory carries the packages).
 */
final class SimulatedShell {
    /** The app's uid: the first app uid range of user 0, as a freshly installed agent gets. */
    static final int APP_UID = 10123;
    static final int PID = 4321;
    /** Activities of other apps that are exported, by intent action: these am start may open. */
    private static final Set<String> EXPORTED_ACTIONS = Collections.unmodifiableSet(new HashSet<>(Arrays.asList(
            "android.settings.SETTINGS", "android.settings.SYSTEM_UPDATE_SETTINGS", "android.settings.WIFI_SETTINGS",
            "android.intent.action.VIEW", "android.intent.action.MAIN")));

    interface Device {
        boolean isInstalled(String packageName);

        Set<String> packages();

        Map<String, String> props();

        String ownPackage();

        void launched(String packageName);
    }

    private final Device device;

    SimulatedShell(Device device) {
        this.device = device;
    }

    CommandResult run(List<String> argv) throws IOException {
        String cmd = argv.get(0);
        List<String> args = argv.subList(1, argv.size());
        switch (cmd) {
            case "getprop":
                return getprop(args);
            case "id":
                return SimulatedToybox.id();
            case "uptime":
                return SimulatedToybox.uptime();
            case "df":
                return SimulatedToybox.df(args);
            case "uname":
                return SimulatedToybox.uname(args);
            case "settings":
                return settings(args);
            case "pm":
                return packageCommand("pm", args);
            case "cmd":
                return cmd(args);
            case "am":
                return am(args);
            case "dumpsys":
                // DumpUtils.checkDumpPermission prints this and returns: dumpsys itself exits 0.
                return ok("Permission Denial: can't dump " + (args.isEmpty() ? "services" : args.get(0)) + " from from pid="
                        + PID + ", uid=" + APP_UID + " due to missing android.permission.DUMP permission");
            case "input":
                return exception(cmd, "java.lang.SecurityException: Injecting input events requires the caller (or the source"
                        + " of the instrumentation, if any) to have the INJECT_EVENTS permission.");
            case "svc":
            case "reboot":
            case "setprop":
            case "appops":
            case "wm":
                return exception(cmd, "java.lang.SecurityException: uid " + APP_UID + " is not the shell user");
            case "cat":
                return SimulatedToybox.cat(args, device.ownPackage());
            case "ls":
                return SimulatedToybox.ls(args, device.ownPackage());
            case "ps":
                return SimulatedToybox.ps(device.ownPackage());
            case "date":
                return SimulatedToybox.date();
            case "echo":
                return SimulatedToybox.echo(args);
            default:
                // ProcessBuilder without a shell: no such program on a user build (su included).
                throw new IOException("Cannot run program \"" + cmd + "\": error=2, No such file or directory");
        }
    }

    private CommandResult getprop(List<String> args) {
        Map<String, String> props = new TreeMap<>(device.props());
        if (args.isEmpty()) {
            StringBuilder b = new StringBuilder();
            for (Map.Entry<String, String> e : props.entrySet()) {
                b.append('[').append(e.getKey()).append("]: [").append(e.getValue()).append("]\n");
            }
            return ok(b.toString());
        }
        // ro.serialno and other serialno_prop values are denied to untrusted_app: empty, like an unset one.
        String v = props.get(args.get(0));
        return ok(v == null ? "" : v);
    }

    private CommandResult settings(List<String> args) {
        String verb = args.isEmpty() ? "" : args.get(0);
        if ((verb.equals("get") && args.size() >= 3) || (verb.equals("list") && args.size() >= 2)) {
            // SettingsService passes the calling package only for root and shell; for an app's uid
            // the provider's read check (enforceSettingReadable) asks AppOps about a null package.
            return exception(verb, "java.lang.SecurityException: Package null does not belong to " + APP_UID);
        }
        if (!args.isEmpty() && (args.get(0).equals("put") || args.get(0).equals("delete") || args.get(0).equals("reset"))) {
            return failed(255, "Security exception: Permission denial: writing to settings requires:"
                    + "android.permission.WRITE_SECURE_SETTINGS\n\njava.lang.SecurityException: Permission denial: "
                    + "writing to settings requires:android.permission.WRITE_SECURE_SETTINGS");
        }
        return failed(255, "Invalid command: " + String.join(" ", args));
    }

    private CommandResult cmd(List<String> args) {
        if (args.isEmpty()) {
            return failed(255, "cmd: No service specified; use -l to list all running services.");
        }
        String service = args.get(0);
        if (service.equals("package")) {
            return packageCommand("cmd package", args.subList(1, args.size()));
        }
        if (service.equals("wifi")) {
            return exception("cmd wifi", "java.lang.SecurityException: Uid " + APP_UID + " does not have access to wifi commands");
        }
        return exception("cmd " + service, "java.lang.SecurityException: Permission Denial: shell command from uid "
                + APP_UID + " requires the shell user");
    }

    private CommandResult packageCommand(String name, List<String> args) {
        String sub = args.isEmpty() ? "" : args.get(0);
        if (sub.equals("list") && args.size() >= 2 && args.get(1).equals("packages")) {
            // Package visibility (Android 11+): a Device Owner declares QUERY_ALL_PACKAGES, so it sees them all.
            StringBuilder b = new StringBuilder();
            for (String p : device.packages()) {
                if (args.size() < 3 || p.contains(args.get(args.size() - 1))) {
                    b.append("package:").append(p).append('\n');
                }
            }
            return ok(b.toString());
        }
        switch (sub) {
            case "install":
            case "install-create":
                return exception(name, "java.lang.SecurityException: Neither user " + APP_UID
                        + " nor current process has android.permission.INSTALL_PACKAGES.");
            case "uninstall":
                return exception(name, "java.lang.SecurityException: Neither user " + APP_UID
                        + " nor current process has android.permission.DELETE_PACKAGES.");
            case "grant":
            case "revoke":
                return exception(name, "java.lang.SecurityException: grantRuntimePermission: Neither user " + APP_UID
                        + " nor current process has android.permission.GRANT_RUNTIME_PERMISSIONS.");
            case "clear":
                return exception(name, "java.lang.SecurityException: PID " + PID
                        + " does not have permission android.permission.CLEAR_APP_USER_DATA to clear data of package "
                        + (args.size() > 1 ? args.get(args.size() - 1) : ""));
            default:
                return exception(name, "java.lang.SecurityException: Permission Denial: attempt to change package state from pid="
                        + PID + ", uid=" + APP_UID);
        }
    }

    private CommandResult am(List<String> args) {
        String sub = args.isEmpty() ? "" : args.get(0);
        if (!sub.equals("start")) {
            return exception("am", "java.lang.SecurityException: Permission Denial: " + sub + "() from pid=" + PID
                    + ", uid=" + APP_UID + " requires android.permission.FORCE_STOP_PACKAGES");
        }
        String component = option(args, "-n");
        String action = option(args, "-a");
        if (component != null) {
            int slash = component.indexOf('/');
            String pkg = slash < 0 ? component : component.substring(0, slash);
            if (!device.isInstalled(pkg)) {
                return failed(1, "Error: Activity class {" + component + "} does not exist.");
            }
            String cls = slash < 0 ? "" : component.substring(slash + 1);
            boolean launcher = cls.equals(".MainActivity") || cls.equals(pkg + ".MainActivity");
            if (!pkg.equals(device.ownPackage()) && !launcher) {
                return failed(255, "Security exception: Permission Denial: starting Intent { cmp=" + component
                        + " } from null (pid=" + PID + ", uid=" + APP_UID + ") not exported from uid 10077");
            }
            device.launched(pkg);
            return ok("Starting: Intent { cmp=" + component + " }");
        }
        if (action != null && EXPORTED_ACTIONS.contains(action)) {
            device.launched("com.android.settings");
            return ok("Starting: Intent { act=" + action + " }");
        }
        return failed(1, "Error: Activity not started, unable to resolve Intent { act=" + action + " }");
    }

    private static String option(List<String> args, String name) {
        int i = args.indexOf(name);
        return i >= 0 && i + 1 < args.size() ? args.get(i + 1) : null;
    }

    private static CommandResult ok(String output) {
        return CommandResult.succeeded(0, output);
    }

    private static CommandResult failed(int exit, String output) {
        return CommandResult.failed(exit, output, "exit code " + exit);
    }

    /** How am, pm, cmd and settings print an exception from the system server: exit 255. */
    private static CommandResult exception(String what, String exception) {
        return failed(255, "Exception occurred while executing '" + what + "':\n" + exception);
    }
}
