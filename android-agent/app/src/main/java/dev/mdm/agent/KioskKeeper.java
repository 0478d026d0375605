package dev.mdm.agent;

import android.content.Context;
import android.content.Intent;
import android.os.Handler;
import android.os.HandlerThread;
import android.util.Log;

/**
 * Auto-relaunch of the designated kiosk app (admin extra kiosk_package): every few seconds, if
 * another app is in front (or the kiosk crashed), bring the kiosk back.
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

    private void check() {
        String kiosk = new AgentSettings(context).kioskPackage();
        if (kiosk != null && !kiosk.isEmpty()) {
            String front = AndroidTelemetry.foregroundApp(context);
            if (front != null && !kiosk.equals(front)) { // unknown (no usage access): leave it
                Intent launch = context.getPackageManager().getLaunchIntentForPackage(kiosk);
                if (launch != null) {
                    launch.addFlags(Intent.FLAG_ACTIVITY_NEW_TASK | Intent.FLAG_ACTIVITY_RESET_TASK_IF_NEEDED);
                    try {
                        context.startActivity(launch);
                    } catch (RuntimeException e) {
                        Log.w(AgentRuntime.TAG, "kiosk relaunch failed", e);
                    }
                }
            }
        }
        Handler h = handler;
        if (h != null && thread != null) {
            h.postDelayed(this::check, CHECK_MS);
        }
    }
}
