package dev.mdm.agent.core.support;

import java.util.ArrayList;
import java.util.List;

import org.json.JSONObject;

import dev.mdm.agent.core.policy.ItemStatus;
import dev.mdm.agent.core.policy.KioskSpec;
import dev.mdm.agent.core.policy.PolicyActions;
import dev.mdm.agent.core.policy.SystemUpdateSpec;
import dev.mdm.agent.core.policy.WifiNetwork;

/** Records each call as "item detail" and answers applied, or what {@link #answer} says. */
public class RecordingPolicyActions implements PolicyActions {
    private final List<String> calls = new ArrayList<>();
    /** Non-null: the status every call returns. */
    public volatile ItemStatus answer;

    private synchronized ItemStatus record(String call) {
        calls.add(call);
        return answer != null ? answer : ItemStatus.applied();
    }

    public synchronized List<String> calls() {
        return new ArrayList<>(calls);
    }

    public synchronized void clear() {
        calls.clear();
    }

    @Override
    public ItemStatus applyKiosk(KioskSpec k, KioskSpec previous) {
        return record("kiosk " + k.packageName + " lock_task=" + k.lockTask + " relaunch=" + k.relaunch
                + " status_bar=" + k.statusBar + (previous == null ? "" : " was " + previous.packageName));
    }

    @Override
    public ItemStatus applySystemUpdate(SystemUpdateSpec s) {
        return record("system_update " + s.type + " " + s.windowStartMin + "-" + s.windowEndMin + " " + s.freezePeriods);
    }

    @Override
    public ItemStatus applySettings(JSONObject settings) {
        return record("settings " + settings);
    }

    @Override
    public ItemStatus applyRestrictions(List<String> wanted, List<String> previous) {
        return record("restrictions " + wanted + " was " + previous);
    }

    @Override
    public ItemStatus applyWifi(List<WifiNetwork> wanted, List<String> previousIds) {
        return record("wifi " + wanted + " was " + previousIds);
    }

    @Override
    public ItemStatus applyBlockedApps(List<String> blocked, List<String> previous) {
        return record("blocked " + blocked + " was " + previous);
    }
}
