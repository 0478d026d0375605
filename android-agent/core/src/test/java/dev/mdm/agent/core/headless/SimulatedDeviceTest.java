package dev.mdm.agent.core.headless;

import static org.hamcrest.MatcherAssert.assertThat;
import static org.hamcrest.Matchers.contains;
import static org.hamcrest.Matchers.empty;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

import dev.mdm.agent.core.exec.ApkSpec;
import dev.mdm.agent.core.exec.CommandResult;
import dev.mdm.agent.core.telemetry.AppInfo;

/** The simulated device's package manager: Android 14's rules for a Device Owner, kept across restarts. */
public class SimulatedDeviceTest {
    private static final String SHA = "0123456789012345678901234567890123456789012345678901234567890123";

    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private final List<String> kills = new ArrayList<>();

    private SimulatedDevice device(File stateDir, Map<String, Long> installed) {
        return new SimulatedDevice(0, null, stateDir, SimulatedDevice.AGENT_PACKAGE, installed,
                (pkg, code) -> kills.add(pkg + " " + code));
    }

    private static ApkSpec spec(String pkg, long versionCode) {
        return new ApkSpec("a", pkg, versionCode, SHA, 3);
    }

    private static Map<String, Long> installed(String pkg, long code) {
        Map<String, Long> m = new HashMap<>();
        m.put(pkg, code);
        return m;
    }

    private static long versionInInventory(SimulatedDevice d, String pkg) {
        for (AppInfo a : d.apps()) {
            if (a.packageName.equals(pkg)) {
                return a.versionCode;
            }
        }
        return -1;
    }

    @Test
    public void a_lower_version_code_is_refused_as_android_refuses_a_downgrade() throws Exception {
        SimulatedDevice d = device(tmp.newFolder(), installed("com.example.field", 12));
        CommandResult r = d.installApk(tmp.newFile(), spec("com.example.field", 11));
        assertEquals("failed", r.status);
        assertEquals(Integer.valueOf(4), r.exitCode); // PackageInstaller.STATUS_FAILURE_INVALID
        assertEquals("INSTALL_FAILED_VERSION_DOWNGRADE: Downgrade detected: Update version code 11 is older than current 12",
                r.output);
        assertTrue(r.error, r.error.startsWith("install com.example.field 11 failed (status 4): INSTALL_FAILED_VERSION_DOWNGRADE"));
        assertEquals(OptionalLong.of(12), d.installedVersionCode("com.example.field"));
        assertEquals("succeeded", d.installApk(tmp.newFile(), spec("com.example.field", 12)).status); // same version: a reinstall
        assertEquals("succeeded", d.installApk(tmp.newFile(), spec("com.example.field", 13)).status);
        assertEquals(OptionalLong.of(13), d.installedVersionCode("com.example.field"));
        assertEquals(13, versionInInventory(d, "com.example.field"));
        assertThat(kills, empty());
    }

    @Test
    public void installing_its_own_package_updates_the_package_manager_then_kills_the_process() throws Exception {
        File state = tmp.newFolder();
        SimulatedDevice d = device(state, installed(SimulatedDevice.AGENT_PACKAGE, 1));
        assertEquals(OptionalLong.of(1), d.installedVersionCode(SimulatedDevice.AGENT_PACKAGE));
        d.installApk(tmp.newFile(), spec(SimulatedDevice.AGENT_PACKAGE, 2));
        assertThat(kills, contains("dev.mdm.agent 2"));
        // The restart: what is installed comes from the state directory, not from the seed.
        SimulatedDevice after = device(state, installed(SimulatedDevice.AGENT_PACKAGE, 1));
        assertEquals(OptionalLong.of(2), after.installedVersionCode(SimulatedDevice.AGENT_PACKAGE));
        assertEquals(2, versionInInventory(after, SimulatedDevice.AGENT_PACKAGE));
    }

    @Test
    public void the_device_owner_package_cannot_be_uninstalled_and_others_leave_the_inventory() throws Exception {
        SimulatedDevice d = device(null, Collections.emptyMap());
        CommandResult own = d.uninstallApp(SimulatedDevice.AGENT_PACKAGE);
        assertEquals("failed", own.status);
        assertTrue(own.error, own.error.contains("DELETE_FAILED_DEVICE_POLICY_MANAGER"));
        assertEquals(OptionalLong.of(1), d.installedVersionCode(SimulatedDevice.AGENT_PACKAGE));
        assertEquals("succeeded", d.uninstallApp("com.example.kiosk").status);
        assertFalse(d.installedVersionCode("com.example.kiosk").isPresent());
        assertEquals(-1, versionInInventory(d, "com.example.kiosk"));
    }
}
