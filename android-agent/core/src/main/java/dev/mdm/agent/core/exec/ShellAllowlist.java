package dev.mdm.agent.core.exec;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The agent's own allowlist of argv prefixes for {@code shell}: the server checks too, and the
 * device does not take the server's word for it. Matching is element by element, never on a joined
 * string, so {@code ["pm", "list"]} does not allow {@code ["pm", "listx"]} or {@code ["pm list"]}.
 */
public final class ShellAllowlist {
    private final List<List<String>> prefixes;

    public ShellAllowlist(List<List<String>> prefixes) {
        List<List<String>> copy = new ArrayList<>();
        for (List<String> p : prefixes) {
            if (p != null && !p.isEmpty()) {
                copy.add(Collections.unmodifiableList(new ArrayList<>(p)));
            }
        }
        this.prefixes = Collections.unmodifiableList(copy);
    }

    /**
     * The read-only diagnostics that work as the agent's own user (PROTOCOL.md v1.1: shell runs
     * as the app's uid in the untrusted_app domain, not as adb's shell user): toybox programs that
     * read through system calls an app may make. Exactly the server's list
     * (commands/services/shell_allowlist.py READ_ONLY_PREFIXES); both sides test against
     * core/src/test/resources/shell-read-only.json. Left out: dumpsys (android.permission.DUMP),
     * settings, pm, cmd, am (binder shell commands that refuse an app or answer it filtered) and
     * cat (a prefix would also let it read the agent's own files, its keys among them).
     */
    static final String[][] READ_ONLY = {{"getprop"}, {"df"}, {"uptime"}, {"id"}, {"uname"}};

    /** The built-in list, {@link #READ_ONLY}, until a policy's shell_allowlist replaces it. */
    public static ShellAllowlist defaults() {
        List<List<String>> prefixes = new ArrayList<>();
        for (String[] p : READ_ONLY) {
            prefixes.add(Arrays.asList(p));
        }
        return new ShellAllowlist(prefixes);
    }

    /** Parses "getprop; pm list" style text: prefixes separated by ';', words by spaces. */
    public static ShellAllowlist parse(String text) {
        List<List<String>> out = new ArrayList<>();
        for (String prefix : text.split(";")) {
            String t = prefix.trim();
            if (!t.isEmpty()) {
                out.add(Arrays.asList(t.split("\\s+")));
            }
        }
        return new ShellAllowlist(out);
    }

    public boolean allows(List<String> argv) {
        if (argv == null || argv.isEmpty()) {
            return false;
        }
        for (List<String> p : prefixes) {
            if (argv.size() >= p.size() && argv.subList(0, p.size()).equals(p)) {
                return true;
            }
        }
        return false;
    }

    public List<List<String>> prefixes() {
        return prefixes;
    }
}
