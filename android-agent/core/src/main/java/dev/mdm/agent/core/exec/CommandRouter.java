package dev.mdm.agent.core.exec;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.OptionalLong;
import java.util.Set;
import java.util.regex.Pattern;

import org.json.JSONObject;

import dev.mdm.agent.core.envelope.Command;
import dev.mdm.agent.core.net.ApiException;
import dev.mdm.agent.core.net.ChecksumMismatchException;
import dev.mdm.agent.core.util.Json;

/**
 * From a verified command's type to its executor: validates params first (rejected bad_params),
 * refuses unknown types (unsupported_type) and shell argv outside the allowlist (not_allowed),
 * and turns an executor's exception into failed.
 */
public final class CommandRouter {
    public static final String UNSUPPORTED_TYPE = "unsupported_type";
    public static final String BAD_PARAMS = "bad_params";
    public static final String NOT_ALLOWED = "not_allowed";

    public static final Set<String> TYPES = Collections.unmodifiableSet(new HashSet<>(Arrays.asList(
            "ping", "launch_app", "reboot", "lock", "shell", "install_apk", "uninstall_app", "clear_app_data",
            "wifi_configure")));
    static final Set<String> WIFI_SECURITY = new HashSet<>(Arrays.asList("open", "wpa2", "wpa3", "eap"));
    private static final Pattern PACKAGE = Pattern.compile("[A-Za-z][A-Za-z0-9_]*(\\.[A-Za-z][A-Za-z0-9_]*)+");
    private static final Pattern ACTIVITY = Pattern.compile("\\.?[A-Za-z][A-Za-z0-9_$]*(\\.[A-Za-z][A-Za-z0-9_$]*)*");
    private static final Pattern SHA256 = Pattern.compile("[0-9a-fA-F]{64}");

    private final DeviceActions actions;
    /** The host's built-in list until a policy's shell_allowlist replaces it (PROTOCOL.md v1.1). */
    private volatile ShellAllowlist allowlist;
    private final ApkFetcher apkFetcher;

    public CommandRouter(DeviceActions actions, ShellAllowlist allowlist, ApkFetcher apkFetcher) {
        this.actions = actions;
        this.allowlist = allowlist;
        this.apkFetcher = apkFetcher;
    }

    /** The policy's shell_allowlist becomes the agent's allowlist, exactly. */
    public void setAllowlist(ShellAllowlist allowlist) {
        this.allowlist = allowlist;
    }

    public ShellAllowlist allowlist() {
        return allowlist;
    }

    /**
     * A policy's required app: the install_apk path (download endpoint, sha256 check, install,
     * package-manager read-back). RetryLaterException: the download is worth another try later.
     */
    public CommandResult installRequired(ApkSpec spec) throws RetryLaterException {
        return install(spec);
    }

    /** What the package manager reports for packageName, or empty (also when it cannot be read). */
    public OptionalLong installedVersionCode(String packageName) {
        try {
            return actions.installedVersionCode(packageName);
        } catch (Exception e) {
            return OptionalLong.empty();
        }
    }

    public static boolean isPackageName(String s) {
        return s != null && s.length() <= 255 && PACKAGE.matcher(s).matches();
    }

    public static boolean isActivityName(String s) {
        return s != null && s.length() <= 255 && ACTIVITY.matcher(s).matches();
    }

    /** install_apk's params checked as the router checks them; IllegalArgumentException says why not. */
    public static ApkSpec checkedApkSpec(JSONObject p) {
        try {
            return apkSpec(p);
        } catch (Refusal r) {
            throw new IllegalArgumentException(r.getMessage());
        }
    }

    /** wifi_configure's params checked as the router checks them; IllegalArgumentException says why not. */
    public static WifiConfig checkedWifiConfig(JSONObject p) {
        try {
            return wifiConfig(p);
        } catch (Refusal r) {
            throw new IllegalArgumentException(r.getMessage());
        }
    }

    /** Thrown by validation: the command is answered rejected with this reason, never run. */
    static final class Refusal extends Exception {
        private static final long serialVersionUID = 1L;
        final String reason;

        Refusal(String reason, String message) {
            super(message);
            this.reason = reason;
        }
    }

    /** Runs the command and returns its final result; RetryLaterException leaves it queued. */
    public CommandResult execute(Command command) throws RetryLaterException {
        JSONObject p = command.params;
        try {
            switch (command.type) {
                case "ping":
                    return run(actions::ping);
                case "launch_app": {
                    String pkg = packageName(p);
                    String activity = optional(p, "activity", ACTIVITY);
                    return run(() -> actions.launchApp(pkg, activity));
                }
                case "reboot":
                    return run(actions::reboot);
                case "lock":
                    return run(actions::lock);
                case "shell": {
                    List<String> argv = Json.strings(p, "argv");
                    if (argv == null || argv.isEmpty()) {
                        throw new Refusal(BAD_PARAMS, "argv must be a non-empty array of strings");
                    }
                    for (String arg : argv) {
                        if (arg.indexOf('\0') >= 0) {
                            throw new Refusal(BAD_PARAMS, "argv holds a NUL character");
                        }
                    }
                    if (!allowlist.allows(argv)) {
                        throw new Refusal(NOT_ALLOWED, "argv does not start with an allowlisted prefix");
                    }
                    return refusedWithExitZero(run(() -> actions.shell(argv)));
                }
                case "install_apk":
                    return install(apkSpec(p));
                case "uninstall_app": {
                    String pkg = packageName(p);
                    return run(() -> actions.uninstallApp(pkg));
                }
                case "clear_app_data": {
                    String pkg = packageName(p);
                    return run(() -> actions.clearAppData(pkg));
                }
                case "wifi_configure": {
                    WifiConfig config = wifiConfig(p);
                    return run(() -> actions.configureWifi(config));
                }
                default:
                    throw new Refusal(UNSUPPORTED_TYPE, "unsupported command type " + command.type);
            }
        } catch (Refusal r) {
            return CommandResult.rejected(r.reason, r.getMessage());
        }
    }

    /**
     * dumpsys (and a service's dump) prints "Permission Denial: ..." and exits 0 when the caller
     * lacks DUMP, as the agent's user always does: that is a refusal, not a result.
     */
    private static CommandResult refusedWithExitZero(CommandResult r) {
        if (CommandResult.SUCCEEDED.equals(r.status) && r.output != null && r.output.startsWith("Permission Denial")) {
            int eol = r.output.indexOf('\n');
            return CommandResult.failed(r.exitCode, r.output,
                    "refused as the agent's own user: " + (eol < 0 ? r.output : r.output.substring(0, eol)));
        }
        return r;
    }

    private CommandResult install(ApkSpec spec) throws RetryLaterException {
        File apk;
        try {
            apk = apkFetcher.fetch(spec);
        } catch (ChecksumMismatchException e) {
            return CommandResult.failed("download rejected: " + e.getMessage());
        } catch (IOException e) {
            throw new RetryLaterException("download interrupted: " + e.getMessage(), e, -1);
        } catch (ApiException e) {
            if (e.isRetryable()) {
                throw new RetryLaterException("download refused for now: " + e.getMessage(), e, e.retryAfterS);
            }
            return CommandResult.failed("download failed: " + e.getMessage());
        }
        CommandResult installed;
        try {
            installed = run(() -> actions.installApk(apk, spec));
        } finally {
            if (!apk.delete()) {
                apk.deleteOnExit();
            }
        }
        if (!CommandResult.SUCCEEDED.equals(installed.status)) {
            return installed;
        }
        return readBack(spec, "");
    }

    /**
     * The result of an install_apk after its installer said it succeeded: what the package
     * manager reports, never what the command asked for. A same-signer update that Android
     * applied to a different version, or an install that did not stick, fails here.
     */
    private CommandResult readBack(ApkSpec spec, String successNote) {
        OptionalLong found;
        try {
            found = actions.installedVersionCode(spec.packageName);
        } catch (Exception e) {
            return CommandResult.failed("the package manager could not be read for " + spec.packageName + ": " + e);
        }
        if (found.isPresent() && found.getAsLong() == spec.versionCode) {
            return CommandResult.succeeded(0, "installed " + spec.packageName + " versionCode " + found.getAsLong()
                    + " (package manager)" + successNote);
        }
        return CommandResult.failed("the package manager reports " + describe(spec.packageName, found)
                + ", not versionCode " + spec.versionCode);
    }

    private static String describe(String packageName, OptionalLong versionCode) {
        return versionCode.isPresent() ? packageName + " versionCode " + versionCode.getAsLong()
                : packageName + " not installed";
    }

    /**
     * The result of a command found RUNNING after a restart: the process ended while it ran, or
     * null to run it again (mayRetry: attempts remain). A reboot that ran is done when we come
     * back (the agent itself checks first that the device did boot, from its uptime). An install_apk is what the package manager reports: the command's version installed
     * (succeeded; an update of the agent itself always ends here, as Android kills the process
     * whose package it replaces), or not, and then the process died during the download or the
     * install, so it runs again (the download resumes from its partial file) or, out of attempts,
     * fails saying what the package manager has. Anything else may be half done: failed.
     */
    public CommandResult afterRestart(Command command, boolean mayRetry) {
        if ("reboot".equals(command.type)) {
            return CommandResult.succeeded();
        }
        if (!"install_apk".equals(command.type)) {
            return CommandResult.failed("interrupted: the agent stopped while the command ran");
        }
        ApkSpec spec;
        try {
            spec = apkSpec(command.params);
        } catch (Refusal r) {
            return mayRetry ? null : CommandResult.rejected(r.reason, r.getMessage());
        }
        CommandResult confirmed = readBack(spec, ", confirmed after the agent restarted");
        if (CommandResult.SUCCEEDED.equals(confirmed.status)) {
            apkFetcher.discard(spec);
            return confirmed;
        }
        if (mayRetry) {
            return null;
        }
        apkFetcher.discard(spec);
        return CommandResult.failed("interrupted by restarts during its download or install, attempts exhausted: "
                + confirmed.error);
    }

    private interface Action {
        CommandResult run() throws Exception;
    }

    private static CommandResult run(Action action) {
        try {
            CommandResult r = action.run();
            return r != null ? r : CommandResult.failed("executor returned no result");
        } catch (Exception e) {
            String msg = e.getMessage();
            return CommandResult.failed(e.getClass().getSimpleName() + (msg == null ? "" : ": " + msg));
        }
    }

    private static String packageName(JSONObject p) throws Refusal {
        String pkg = Json.string(p, "package");
        if (pkg == null || pkg.length() > 255 || !PACKAGE.matcher(pkg).matches()) {
            throw new Refusal(BAD_PARAMS, "package must be a package name");
        }
        return pkg;
    }

    private static String optional(JSONObject p, String key, Pattern pattern) throws Refusal {
        Object v = p.opt(key);
        if (v == null || v == JSONObject.NULL) {
            return null;
        }
        if (!(v instanceof String) || !pattern.matcher((String) v).matches()) {
            throw new Refusal(BAD_PARAMS, key + " is not valid");
        }
        return (String) v;
    }

    static ApkSpec apkSpec(JSONObject p) throws Refusal {
        Object id = p.opt("apk_id");
        String apkId = id instanceof String ? (String) id : Json.integer(p, "apk_id") != null ? String.valueOf(Json.integer(p, "apk_id")) : null;
        if (apkId == null || apkId.isEmpty() || apkId.length() > 128) {
            throw new Refusal(BAD_PARAMS, "apk_id is required");
        }
        String pkg = packageName(p);
        Long versionCode = Json.integer(p, "version_code");
        String sha = Json.string(p, "sha256");
        Long size = Json.integer(p, "size");
        if (versionCode == null || versionCode < 0) {
            throw new Refusal(BAD_PARAMS, "version_code must be a non-negative integer");
        }
        if (sha == null || !SHA256.matcher(sha).matches()) {
            throw new Refusal(BAD_PARAMS, "sha256 must be 64 hex digits");
        }
        if (size == null || size <= 0) {
            throw new Refusal(BAD_PARAMS, "size must be a positive integer");
        }
        return new ApkSpec(apkId, pkg, versionCode, sha.toLowerCase(java.util.Locale.ROOT), size);
    }

    static WifiConfig wifiConfig(JSONObject p) throws Refusal {
        String ssid = Json.string(p, "ssid");
        if (ssid == null || ssid.isEmpty() || ssid.getBytes(StandardCharsets.UTF_8).length > 32) {
            throw new Refusal(BAD_PARAMS, "ssid must be 1-32 bytes");
        }
        String security = Json.string(p, "security");
        if (security == null || !WIFI_SECURITY.contains(security)) {
            throw new Refusal(BAD_PARAMS, "security must be one of open, wpa2, wpa3, eap");
        }
        Object pw = p.opt("password");
        String password = pw instanceof String ? (String) pw : null;
        if (pw != null && pw != JSONObject.NULL && password == null) {
            throw new Refusal(BAD_PARAMS, "password must be a string");
        }
        if (security.equals("open")) {
            if (password != null && !password.isEmpty()) {
                throw new Refusal(BAD_PARAMS, "an open network takes no password");
            }
            password = null;
        } else if (security.equals("eap")) {
            if (password == null || password.isEmpty()) {
                throw new Refusal(BAD_PARAMS, "eap needs a password");
            }
        } else if (password == null || password.length() < 8 || password.length() > 63) {
            throw new Refusal(BAD_PARAMS, "a WPA passphrase is 8-63 characters");
        }
        Object hidden = p.opt("hidden");
        if (hidden != null && hidden != JSONObject.NULL && !(hidden instanceof Boolean)) {
            throw new Refusal(BAD_PARAMS, "hidden must be a boolean");
        }
        return new WifiConfig(ssid, security, password, Boolean.TRUE.equals(hidden));
    }
}
