package dev.mdm.agent.core.headless;

import java.text.SimpleDateFormat;
import java.util.Date;
import java.util.List;
import java.util.Locale;
import java.util.TimeZone;

import dev.mdm.agent.core.exec.CommandResult;

/**
 * The toybox programs of a user build as the agent's uid runs them (untrusted_app domain): what
 * they read through system calls works (uname, sysinfo for uptime, statvfs for df), files follow
 * SELinux and Unix permissions. Those on the read-only allowlist (id, uptime, df, uname; getprop is
 * {@link SimulatedShell}'s) answer as a device does; cat, ls and ps show what an app may see, so
 * the simulated device is no more permissive than a real one when a host widens its allowlist.
 */
final class SimulatedToybox {
    static final String KERNEL_RELEASE = "5.15.148-android14-11-g0d7b4c2a1e6f";
    static final String KERNEL_VERSION = "#1 SMP PREEMPT Mon Jun 3 09:12:44 UTC 2024";
    static final String MACHINE = "aarch64";
    /** untrusted_app may read these /proc files (app.te: proc_meminfo; proc_version is world readable). */
    private static final String MEMINFO = "MemTotal:        3932160 kB\nMemFree:          412304 kB\n"
            + "MemAvailable:    1689600 kB\nBuffers:            6144 kB\nCached:          1265664 kB\n"
            + "SwapTotal:       2097148 kB\nSwapFree:        1572860 kB\n";

    private SimulatedToybox() {}

    static CommandResult id() {
        int uid = SimulatedShell.APP_UID;
        return ok("uid=" + uid + "(u0_a123) gid=" + uid + "(u0_a123) groups=" + uid
                + "(u0_a123),3003(inet),9997(everybody),20123(u0_a123_cache),50123(all_a123)"
                + " context=u:r:untrusted_app:s0:c123,c256,c512,c768\n");
    }

    /** sysinfo(2): no file read, so it works where /proc/uptime is denied. No utmp on Android: 0 users. */
    static CommandResult uptime() {
        return ok(" 10:00:00 up 2 days,  3:12,  0 users,  load average: 0.52, 0.58, 0.59\n");
    }

    /** uname(2); -a adds toybox's -o, "Toybox". */
    static CommandResult uname(List<String> args) {
        String flags = String.join("", args).replace("-", "");
        for (char f : flags.toCharArray()) {
            if ("asnrvmo".indexOf(f) < 0) {
                return CommandResult.failed(1, "uname: Unknown option '" + f + "'\n", "exit code 1");
            }
        }
        if (flags.isEmpty()) {
            flags = "s";
        }
        if (flags.contains("a")) {
            flags = "snrvmo";
        }
        StringBuilder b = new StringBuilder();
        for (char f : "snrvmo".toCharArray()) {
            if (flags.indexOf(f) < 0) {
                continue;
            }
            String part;
            switch (f) {
                case 's': part = "Linux"; break;
                case 'n': part = "localhost"; break;
                case 'r': part = KERNEL_RELEASE; break;
                case 'v': part = KERNEL_VERSION; break;
                case 'm': part = MACHINE; break;
                default: part = "Toybox";
            }
            b.append(b.length() == 0 ? "" : " ").append(part);
        }
        return ok(b.append('\n').toString());
    }

    /**
     * /proc/mounts of the app's mount namespace and statvfs(2) of each: the mounts an app cannot
     * stat are skipped silently, so df works and exits 0.
     */
    static CommandResult df(List<String> args) {
        if (args.contains("-h")) {
            return ok("Filesystem        Size  Used Avail Use% Mounted on\n"
                    + "/dev/block/dm-0   3.2G  3.2G     0 100% /\n"
                    + "tmpfs             1.8G  1.4M  1.8G   1% /dev\n"
                    + "/dev/block/dm-5    57G   18G   39G  32% /data\n"
                    + "/dev/fuse          57G   18G   39G  32% /storage/emulated\n");
        }
        return ok("Filesystem       1K-blocks     Used Available Use% Mounted on\n"
                + "/dev/block/dm-0    3354624  3354624         0 100% /\n"
                + "tmpfs              1887232     1408   1885824   1% /dev\n"
                + "/dev/block/dm-5   60416000 18874368  41541632  32% /data\n"
                + "/dev/fuse         60416000 18874368  41541632  32% /storage/emulated\n");
    }

    static CommandResult cat(List<String> args, String ownPackage) {
        StringBuilder out = new StringBuilder();
        int exit = 0;
        for (String path : args) {
            if (path.equals("/proc/meminfo")) {
                out.append(MEMINFO);
            } else if (path.equals("/proc/version")) {
                out.append("Linux version ").append(KERNEL_RELEASE).append(" (build-user@build-host) ")
                        .append(KERNEL_VERSION).append('\n');
            } else if (ownFile(path, ownPackage)) {
                continue; // the agent's own files are readable (its keys among them): why cat is on no allowlist
            } else if (path.startsWith("/proc/") || path.startsWith("/data") || path.startsWith("/sys/")) {
                // /proc/uptime, /proc/stat, /proc/vmstat are denied to untrusted_app since Android 8.
                out.append("cat: ").append(path).append(": Permission denied\n");
                exit = 1;
            } else {
                out.append("cat: ").append(path).append(": No such file or directory\n");
                exit = 1;
            }
        }
        return exit == 0 ? ok(out.toString()) : CommandResult.failed(exit, out.toString(), "exit code " + exit);
    }

    static CommandResult ls(List<String> args, String ownPackage) {
        for (String path : args) {
            if (path.startsWith("/data") && !ownFile(path, ownPackage)) {
                return CommandResult.failed(1, "ls: " + path + ": Permission denied\n", "exit code 1");
            }
        }
        return ok("");
    }

    /** hidepid: an app sees its own processes only. */
    static CommandResult ps(String ownPackage) {
        return ok("USER           PID  PPID     VSZ    RSS WCHAN            ADDR S NAME\n"
                + "u0_a123       " + SimulatedShell.PID + "   612 14893312 98304 0                   0 S " + ownPackage + "\n"
                + "u0_a123       4398  " + SimulatedShell.PID + " 10871296  3072 0                   0 R ps\n");
    }

    static CommandResult echo(List<String> args) {
        return ok(String.join(" ", args) + "\n");
    }

    static CommandResult date() {
        SimpleDateFormat f = new SimpleDateFormat("EEE MMM d HH:mm:ss zzz yyyy", Locale.US);
        f.setTimeZone(TimeZone.getTimeZone("UTC"));
        return ok(f.format(new Date()) + "\n");
    }

    private static boolean ownFile(String path, String ownPackage) {
        return path.startsWith("/data/data/" + ownPackage + "/") || path.startsWith("/data/user/0/" + ownPackage + "/");
    }

    private static CommandResult ok(String output) {
        return CommandResult.succeeded(0, output);
    }
}
