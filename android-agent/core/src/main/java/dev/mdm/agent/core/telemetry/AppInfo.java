package dev.mdm.agent.core.telemetry;

import org.json.JSONObject;

import dev.mdm.agent.core.util.Json;

/** One installed app, as PUT /api/v1/device/inventory lists it. */
public final class AppInfo {
    public final String packageName;
    public final String versionName;
    public final long versionCode;
    public final boolean system;
    public final boolean enabled;

    public AppInfo(String packageName, String versionName, long versionCode, boolean system, boolean enabled) {
        this.packageName = packageName;
        this.versionName = versionName;
        this.versionCode = versionCode;
        this.system = system;
        this.enabled = enabled;
    }

    public JSONObject toJson() {
        return Json.obj("package", packageName, "version_name", versionName == null ? "" : versionName,
                "version_code", versionCode, "system", system, "enabled", enabled);
    }
}
