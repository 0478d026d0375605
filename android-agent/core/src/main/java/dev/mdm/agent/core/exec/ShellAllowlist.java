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
     * Read-only diagnostics that work as the agent's own user (PROTOCOL.md v1.1: shell runs as the
     * app, not as adb's shell user): no dumpsys, which needs android.permission.DUMP. The list a
     * policy's shell_allowlist replaces; hosts may pass their own to widen or narrow it.
     */
    public static ShellAllowlist defaults() {
        return new ShellAllowlist(Arrays.asList(
                Arrays.asList("getprop"),
                Arrays.asList("pm", "list"),
                Arrays.asList("settings", "get"),
                Arrays.asList("cmd", "package", "list"),
                Arrays.asList("id"),
                Arrays.asList("uptime"),
                Arrays.asList("df")));
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
