package dev.mdm.agent;

import android.app.ActivityManager;
import android.app.usage.UsageEvents;
import android.app.usage.UsageStatsManager;
import android.content.Context;
import android.content.Intent;
import android.content.IntentFilter;
import android.net.ConnectivityManager;
import android.net.LinkAddress;
import android.net.LinkProperties;
import android.net.Network;
import android.net.NetworkCapabilities;
import android.net.wifi.WifiInfo;
import android.net.wifi.WifiManager;
import android.os.BatteryManager;
import android.os.Environment;
import android.os.StatFs;
import android.os.SystemClock;

import org.json.JSONObject;

import java.net.Inet4Address;

import dev.mdm.agent.core.telemetry.TelemetrySource;
import dev.mdm.agent.core.util.Json;

/** Heartbeat telemetry under PROTOCOL.md's field names; a field that cannot be read is left out. */
final class AndroidTelemetry implements TelemetrySource {
    private static final long MB = 1024 * 1024;
    private final Context context;

    AndroidTelemetry(Context context) {
        this.context = context;
    }

    @Override
    public JSONObject read() {
        JSONObject o = new JSONObject();
        battery(o);
        memory(o);
        storage(o);
        network(o);
        String fg = foregroundApp(context);
        if (fg != null) {
            Json.put(o, "foreground_app", fg);
        }
        Json.put(o, "uptime_s", SystemClock.elapsedRealtime() / 1000);
        PolicyFlags.addTo(context, o);
        return o;
    }

    private void battery(JSONObject o) {
        Intent b = context.registerReceiver(null, new IntentFilter(Intent.ACTION_BATTERY_CHANGED));
        if (b == null) {
            return;
        }
        int level = b.getIntExtra(BatteryManager.EXTRA_LEVEL, -1);
        int scale = b.getIntExtra(BatteryManager.EXTRA_SCALE, -1);
        if (level >= 0 && scale > 0) {
            Json.put(o, "battery_pct", Math.round(level * 100f / scale));
        }
        Json.put(o, "charging", b.getIntExtra(BatteryManager.EXTRA_PLUGGED, 0) != 0);
        int tenths = b.getIntExtra(BatteryManager.EXTRA_TEMPERATURE, Integer.MIN_VALUE);
        if (tenths != Integer.MIN_VALUE) {
            Json.put(o, "battery_temp_c", tenths / 10.0);
        }
    }

    private void memory(JSONObject o) {
        ActivityManager.MemoryInfo mi = new ActivityManager.MemoryInfo();
        context.getSystemService(ActivityManager.class).getMemoryInfo(mi);
        Json.put(o, "mem_total_mb", mi.totalMem / MB);
        Json.put(o, "mem_avail_mb", mi.availMem / MB);
    }

    private void storage(JSONObject o) {
        StatFs fs = new StatFs(Environment.getDataDirectory().getPath());
        Json.put(o, "storage_total_mb", fs.getTotalBytes() / MB);
        Json.put(o, "storage_free_mb", fs.getAvailableBytes() / MB);
    }

    @SuppressWarnings("deprecation") // getConnectionInfo: still the way for a Device Owner to read SSID/RSSI
    private void network(JSONObject o) {
        ConnectivityManager cm = context.getSystemService(ConnectivityManager.class);
        Network active = cm.getActiveNetwork();
        NetworkCapabilities caps = active == null ? null : cm.getNetworkCapabilities(active);
        String type = "none";
        if (caps != null) {
            if (caps.hasTransport(NetworkCapabilities.TRANSPORT_VPN)) {
                type = "vpn";
            } else if (caps.hasTransport(NetworkCapabilities.TRANSPORT_WIFI)) {
                type = "wifi";
            } else if (caps.hasTransport(NetworkCapabilities.TRANSPORT_CELLULAR)) {
                type = "cellular";
            } else if (caps.hasTransport(NetworkCapabilities.TRANSPORT_ETHERNET)) {
                type = "ethernet";
            } else if (caps.hasTransport(NetworkCapabilities.TRANSPORT_BLUETOOTH)) {
                type = "bluetooth";
            } else {
                type = "other";
            }
        }
        Json.put(o, "network_type", type);
        if (type.equals("wifi")) {
            WifiInfo info = context.getApplicationContext().getSystemService(WifiManager.class).getConnectionInfo();
            if (info != null) {
                String ssid = info.getSSID();
                if (ssid != null && !ssid.equals(WifiManager.UNKNOWN_SSID)) {
                    Json.put(o, "wifi_ssid", ssid.startsWith("\"") && ssid.endsWith("\"") && ssid.length() >= 2
                            ? ssid.substring(1, ssid.length() - 1) : ssid);
                }
                Json.put(o, "wifi_rssi", info.getRssi());
            }
        }
        LinkProperties link = active == null ? null : cm.getLinkProperties(active);
        if (link != null) {
            for (LinkAddress a : link.getLinkAddresses()) {
                if (a.getAddress() instanceof Inet4Address) {
                    Json.put(o, "ip_address", a.getAddress().getHostAddress());
                    break;
                }
            }
        }
    }

    /** The last app moved to the foreground in the past hour (needs usage access), or null. */
    static String foregroundApp(Context context) {
        if (!PolicyFlags.usageAccess(context)) {
            return null; // queryEvents would answer nothing, which is not "no app in front"
        }
        UsageStatsManager usm = context.getSystemService(UsageStatsManager.class);
        long now = System.currentTimeMillis();
        UsageEvents events = usm.queryEvents(now - 3_600_000, now);
        UsageEvents.Event e = new UsageEvents.Event();
        String last = null;
        while (events != null && events.hasNextEvent()) {
            events.getNextEvent(e);
            if (e.getEventType() == UsageEvents.Event.MOVE_TO_FOREGROUND) {
                last = e.getPackageName();
            }
        }
        return last;
    }
}
