package dev.mdm.agent.core.policy;

import java.util.List;

import org.json.JSONObject;

/** For a host that cannot act as a Device Owner: every platform item is reported unsupported. */
public final class UnsupportedPolicyActions implements PolicyActions {
    private static ItemStatus no() {
        return ItemStatus.unsupported("this host is not a Device Owner");
    }

    @Override
    public ItemStatus applyKiosk(KioskSpec kiosk, KioskSpec previous) {
        return no();
    }

    @Override
    public ItemStatus applySystemUpdate(SystemUpdateSpec spec) {
        return no();
    }

    @Override
    public ItemStatus applySettings(JSONObject settings) {
        return no();
    }

    @Override
    public ItemStatus applyRestrictions(List<String> wanted, List<String> previous) {
        return no();
    }

    @Override
    public ItemStatus applyWifi(List<WifiNetwork> wanted, List<String> previousIds) {
        return no();
    }

    @Override
    public ItemStatus applyBlockedApps(List<String> blocked, List<String> previous) {
        return no();
    }
}
