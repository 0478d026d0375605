package dev.mdm.agent;

import android.content.ComponentName;
import android.content.Context;
import android.content.Intent;
import android.os.Handler;
import android.os.HandlerThread;
import android.util.Log;

/**
 * Auto-relaunch of the kiosk app (the policy's kiosk item, or the admin extra kiosk_package):
 * every few seconds, if the kiosk is no longer in front, bring it back.
 */
final class KioskKeeper {
    private static final long CHECK_MS = 5_000;
    private final Context context;
    private HandlerThread thread;
    private Handler handler;

    KioskKeeper(Context context) {
        this.context = context.getApplicationContext();
    }

    synchronized void start() {
        if (thread != null) {
            return;
        }
        thread = new HandlerThread("mdm-agent-kiosk");
        thread.start();
        handler = new Handler(thread.getLooper());
        handler.post(this::check);
    }

    synchronized void stop() {
        if (thread != null) {
            thread.quitSafely();
            thread = null;
        }
    }

    /**
     * The policy's kiosk (or the QR extra's kiosk_package): in lock task mode the user cannot
     * leave it, so only its end (the app crashed or was closed by the system) needs a relaunch,
     * which needs no usage access; without lock task, another app in front is noticed only with
     * usage access, which the agent reports in usage_access rather than pretending.
     */
    private void check() {
        AgentSettings settings = new AgentSettings(context);
        String kiosk = settings.kioskPackage();
        if (kiosk != null && !kiosk.isEmpty() && settings.kioskRelaunch()) {
            boolean lockTask = settings.kioskLockTask();
            boolean away;
            if (lockTask) {
                away = !AndroidPolicy.lockTaskActive(context);
            } else {
                String front = AndroidTelemetry.foregroundApp(context);
                away = front != null && !kiosk.equals(front); // unknown (no usage access): leave it
            }
            if (away) {
                relaunch(kiosk, settings.kioskActivity(), lockTask);
            }
        }
        Handler h = handler;
        if (h != null && thread != null) {
            h.postDelayed(this::check, CHECK_MS);
        }
    }

    private void relaunch(String kiosk, String activity, boolean lockTask) {
        ComponentName component = activity != null ? new ComponentName(kiosk, activity) : null;
        if (component == null) {
            Intent launch = context.getPackageManager().getLaunchIntentForPackage(kiosk);
            component = launch == null ? null : launch.getComponent();
        }
        if (component == null) {
            return;
        }
        try {
            AndroidPolicy.launchKiosk(context, component, lockTask);
        } catch (RuntimeException e) {
            Log.w(AgentRuntime.TAG, "kiosk relaunch failed", e);
        }
    }
}
