package dev.mdm.agent.core.policy;

import java.util.List;

import org.json.JSONObject;

/**
 * The Device Owner side of the policy items (PROTOCOL.md v1.1), one method each, called by
 * {@link PolicyApplier} with values whose shape it already checked. The app implements them with
 * DevicePolicyManager and WifiManager; the headless runner simulates them. Each is idempotent
 * (desired state: the whole policy is applied again at every start). {@code previous} is the
 * value this device last applied for the item (null: none), so what the policy added before and
 * no longer lists can be undone. An {@link UnsupportedOperationException} reports the item
 * {@code unsupported}; any other exception {@code failed} with its message.
 * The shell allowlist and required apps are the core's own business and never reach here.
 */
public interface PolicyActions {
    /** kiosk: lock task packages, persistent HOME activity, relaunch, status bar. */
    ItemStatus applyKiosk(KioskSpec kiosk, KioskSpec previous) throws Exception;

    /** system_update: the system update policy and its freeze periods. */
    ItemStatus applySystemUpdate(SystemUpdateSpec spec) throws Exception;

    /** settings: global and system settings through the device-policy API, never a shell. */
    ItemStatus applySettings(JSONObject settings) throws Exception;

    /** restrictions: Android user restriction names, set; those in previous and not in wanted cleared. */
    ItemStatus applyRestrictions(List<String> wanted, List<String> previous) throws Exception;

    /** wifi: networks added or updated; those whose id is in previousIds and not in wanted removed. */
    ItemStatus applyWifi(List<WifiNetwork> wanted, List<String> previousIds) throws Exception;

    /** apps.blocked: hidden; those in previous and not in blocked shown again. */
    ItemStatus applyBlockedApps(List<String> blocked, List<String> previous) throws Exception;
}
