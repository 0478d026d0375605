package dev.mdm.agent;

import android.content.Context;
import android.content.pm.ApplicationInfo;
import android.content.pm.PackageInfo;
import android.content.pm.PackageManager;

import androidx.core.content.pm.PackageInfoCompat;

import java.util.ArrayList;
import java.util.List;

import dev.mdm.agent.core.telemetry.AppInfo;
import dev.mdm.agent.core.telemetry.InventorySource;

/**
 * Installed apps, cached: the core reads this on every heartbeat (for apps_hash), and
 * PackageManager is slow. Refreshed after a minute or after the agent installs or removes one.
 */
final class AndroidInventory implements InventorySource {
    private static final long MAX_AGE_MS = 60_000;
    private static volatile long cachedAtMs = Long.MIN_VALUE / 2;

    private final Context context;
    private List<AppInfo> cached = new ArrayList<>();

    AndroidInventory(Context context) {
        this.context = context;
    }

    static void invalidate() {
        cachedAtMs = Long.MIN_VALUE / 2;
    }

    @Override
    public synchronized List<AppInfo> apps() {
        long now = android.os.SystemClock.elapsedRealtime();
        if (now - cachedAtMs > MAX_AGE_MS) {
            cached = read();
            cachedAtMs = now;
        }
        return new ArrayList<>(cached);
    }

    private List<AppInfo> read() {
        PackageManager pm = context.getPackageManager();
        List<AppInfo> out = new ArrayList<>();
        for (PackageInfo p : pm.getInstalledPackages(0)) {
            ApplicationInfo a = p.applicationInfo;
            boolean system = a != null && (a.flags & ApplicationInfo.FLAG_SYSTEM) != 0;
            boolean enabled = a == null || a.enabled;
            out.add(new AppInfo(p.packageName, p.versionName, PackageInfoCompat.getLongVersionCode(p), system, enabled));
        }
        return out;
    }
}
