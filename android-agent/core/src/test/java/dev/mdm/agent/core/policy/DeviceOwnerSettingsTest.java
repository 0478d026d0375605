package dev.mdm.agent.core.policy;

import static org.hamcrest.MatcherAssert.assertThat;
import static org.hamcrest.Matchers.containsString;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.TreeSet;

import org.json.JSONObject;
import org.junit.Test;

import dev.mdm.agent.core.util.Json;

/**
 * The settings keys are the server's (policy-settings.json, which tests/test_agent_contract.py
 * holds against commands/policies/items.py), with the server's types and bounds.
 */
public class DeviceOwnerSettingsTest {
    public static JSONObject contract() throws IOException {
        try (InputStream in = DeviceOwnerSettingsTest.class.getResourceAsStream("/policy-settings.json")) {
            assertNotNull("policy-settings.json is on the test classpath", in);
            return Json.parseObjectOrNull(new String(in.readAllBytes(), StandardCharsets.UTF_8)).optJSONObject("settings");
        }
    }

    private static List<String> keys(JSONObject o) {
        List<String> out = new ArrayList<>();
        for (Iterator<String> it = o.keys(); it.hasNext(); ) {
            out.add(it.next());
        }
        return out;
    }

    private static DeviceOwnerSettings.Plan plan(String key, Object value) {
        return DeviceOwnerSettings.plan(Json.obj(key, value));
    }

    @Test
    public void the_agent_knows_exactly_the_servers_keys() throws IOException {
        assertEquals(new TreeSet<>(keys(contract())), new TreeSet<>(DeviceOwnerSettings.KEYS));
        assertEquals("no key twice", DeviceOwnerSettings.KEYS.size(), new TreeSet<>(DeviceOwnerSettings.KEYS).size());
    }

    @Test
    public void each_key_takes_the_servers_values_and_refuses_the_rest() throws IOException {
        JSONObject contract = contract();
        for (String key : keys(contract)) {
            JSONObject spec = contract.optJSONObject(key);
            List<Object> good = new ArrayList<>();
            List<Object> bad = new ArrayList<>();
            switch (spec.optString("type")) {
                case "bool":
                    good.add(true);
                    good.add(false);
                    bad.add("true");
                    bad.add(1);
                    break;
                case "int":
                    good.add(spec.optLong("min"));
                    good.add(spec.optLong("max"));
                    bad.add(spec.optLong("min") - 1);
                    bad.add(spec.optLong("max") + 1);
                    bad.add(true);
                    bad.add(1.5);
                    break;
                case "time_zone":
                    good.add("Europe/Paris");
                    good.add("America/Argentina/Buenos_Aires");
                    bad.add("Mars/Olympus_Mons");
                    bad.add(3);
                    break;
                default:
                    throw new AssertionError("unknown type in policy-settings.json: " + spec);
            }
            for (Object v : good) {
                DeviceOwnerSettings.Plan p = plan(key, v);
                assertEquals(key + "=" + v, ItemStatus.applied(), p.statusWhenWritten());
                assertEquals(key, p.settings.get(0).policyKey);
            }
            for (Object v : bad) {
                ItemStatus s = plan(key, v).statusWhenWritten();
                assertEquals(key + "=" + v, "failed", s.state);
                assertThat(s.reason, containsString(key + ": must be"));
            }
        }
    }

    @Test
    public void a_key_outside_the_set_is_unsupported_by_name_and_the_others_still_apply() {
        DeviceOwnerSettings.Plan p = DeviceOwnerSettings.plan(Json.obj("adb_enabled", true, "screen_brightness", 10,
                "airplane_mode_on", true));
        assertEquals(1, p.settings.size());
        assertEquals(ItemStatus.unsupported("not settings a Device Owner can change: adb_enabled, airplane_mode_on"),
                p.statusWhenWritten());
        p.refused.put("screen_brightness", "refused");
        assertEquals("failed", p.statusWhenWritten().state);
        assertThat(p.statusWhenWritten().reason, containsString("screen_brightness: refused; not settings"));
    }

    @Test
    public void the_automatic_time_zone_goes_off_before_a_fixed_zone_is_set() {
        DeviceOwnerSettings.Plan p = DeviceOwnerSettings.plan(Json.obj("time_zone", "Europe/Paris", "auto_time_zone", false));
        assertEquals(DeviceOwnerSettings.Target.AUTO_TIME_ZONE, p.settings.get(0).target);
        assertEquals(DeviceOwnerSettings.Target.TIME_ZONE, p.settings.get(1).target);
        assertTrue(DeviceOwnerSettings.KEYS.indexOf("auto_time_zone") < DeviceOwnerSettings.KEYS.indexOf("time_zone"));
    }

    @Test
    public void values_are_written_as_android_stores_them() {
        DeviceOwnerSettings.Resolved stay = plan("stay_on_while_plugged", true).settings.get(0);
        assertEquals("stay_on_while_plugged_in", stay.androidKey);
        assertEquals("7", stay.value);
        assertEquals("600000", plan("screen_off_timeout_s", 600).settings.get(0).value);
        DeviceOwnerSettings.Resolved lockdown = plan("wifi_configs_lockdown", true).settings.get(0);
        assertEquals(DeviceOwnerSettings.Target.WIFI_LOCKDOWN, lockdown.target);
        assertEquals("wifi_device_owner_configs_lockdown", lockdown.androidKey);
        assertTrue(lockdown.on());
        assertEquals("0", plan("location_enabled", false).settings.get(0).value);
        assertEquals("3", plan("location_enabled", true).settings.get(0).value);
    }
}
