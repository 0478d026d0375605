package dev.mdm.agent.core.telemetry;

import java.util.List;

/**
 * The installed apps. Read on every heartbeat (for apps_hash), so an implementation over a slow
 * source (PackageManager) caches and refreshes on package-change broadcasts.
 */
public interface InventorySource {
    List<AppInfo> apps();
}
