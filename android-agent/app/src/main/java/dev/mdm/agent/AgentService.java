package dev.mdm.agent;

import android.app.AlarmManager;
import android.app.PendingIntent;
import android.app.Service;
import android.content.Context;
import android.content.Intent;
import android.content.pm.ServiceInfo;
import android.net.ConnectivityManager;
import android.net.Network;
import android.os.Build;
import android.os.IBinder;
import android.os.PowerManager;
import android.os.SystemClock;
import android.util.Log;

import androidx.core.app.ServiceCompat;
import androidx.core.content.ContextCompat;

import dev.mdm.agent.core.Agent;

/**
 * Runs the agent loop in the foreground (WorkManager's 15-minute minimum cannot carry a 10-60 s
 * heartbeat). Doze-aware: the loop thread's timed wait stops counting while the CPU sleeps, so
 * every step also sets a while-idle alarm for the next due time, and a partial wake lock is held
 * only during a step. Network return ends a backoff at once.
 */
public final class AgentService extends Service {
    private static final long STEP_WAKE_LOCK_MS = 120_000;

    private volatile boolean running;
    private static volatile boolean loopAlive;
    private Thread loop;
    private PowerManager.WakeLock wakeLock;
    private ConnectivityManager.NetworkCallback networkCallback;
    private KioskKeeper kiosk;

    public static void start(Context context) {
        ContextCompat.startForegroundService(context, new Intent(context, AgentService.class));
    }

    @Override
    public void onCreate() {
        super.onCreate();
        // Android 14 requires a type; systemExempted is allowed to a Device Owner app (one of the
        // listed eligible cases). Before the agent is Device Owner it would throw: specialUse then.
        int type = Build.VERSION.SDK_INT < 34 ? 0 : DeviceOwner.isDeviceOwner(this)
                ? ServiceInfo.FOREGROUND_SERVICE_TYPE_SYSTEM_EXEMPTED : ServiceInfo.FOREGROUND_SERVICE_TYPE_SPECIAL_USE;
        ServiceCompat.startForeground(this, Notifications.ONGOING_ID, Notifications.ongoing(this), type);
        PowerManager pm = (PowerManager) getSystemService(POWER_SERVICE);
        wakeLock = pm.newWakeLock(PowerManager.PARTIAL_WAKE_LOCK, "mdm-agent:step");
        wakeLock.setReferenceCounted(false);
        networkCallback = new ConnectivityManager.NetworkCallback() {
            @Override
            public void onAvailable(Network network) {
                Agent agent = AgentRuntime.get(AgentService.this).agent();
                if (agent != null) {
                    agent.retryNow();
                }
            }
        };
        getSystemService(ConnectivityManager.class).registerDefaultNetworkCallback(networkCallback);
        kiosk = new KioskKeeper(this);
    }

    @Override
    public int onStartCommand(Intent intent, int flags, int startId) {
        if (loop == null || !loop.isAlive()) {
            running = true;
            loop = new Thread(this::runLoop, "mdm-agent-loop");
            loop.start();
        }
        kiosk.start();
        return START_STICKY;
    }

    private void runLoop() {
        Agent agent = AgentRuntime.get(this).agent();
        if (agent == null) {
            Log.w(AgentRuntime.TAG, "not provisioned (no server_url / enroll_key): stopping");
            stopSelf();
            return;
        }
        agent.start();
        loopAlive = true;
        try {
            loopSteps(agent);
        } finally {
            loopAlive = false;
        }
    }

    /** True while the foreground loop drives the agent (else a push worker drives it briefly). */
    static boolean isLoopAlive() {
        return loopAlive;
    }

    private void loopSteps(Agent agent) {
        while (running && !agent.isStopped()) {
            long delay;
            wakeLock.acquire(STEP_WAKE_LOCK_MS);
            try {
                delay = agent.step();
            } catch (RuntimeException e) {
                Log.e(AgentRuntime.TAG, "step failed", e);
                delay = 30_000;
            } finally {
                wakeLock.release();
            }
            if (delay > 0) {
                scheduleWakeUp(delay);
                agent.awaitWork(delay);
            }
        }
    }

    /** Inexact while-idle alarm: allowed in Doze (at most about every 9 minutes there). */
    private void scheduleWakeUp(long delayMs) {
        AlarmManager alarms = getSystemService(AlarmManager.class);
        alarms.setAndAllowWhileIdle(AlarmManager.ELAPSED_REALTIME_WAKEUP, SystemClock.elapsedRealtime() + delayMs,
                HeartbeatAlarmReceiver.pendingIntent(this));
    }

    @Override
    public void onDestroy() {
        running = false;
        Agent agent = AgentRuntime.get(this).agent();
        if (agent != null) {
            agent.retryNow(); // wakes the loop so it sees running == false
        }
        kiosk.stop();
        getSystemService(ConnectivityManager.class).unregisterNetworkCallback(networkCallback);
        super.onDestroy();
    }

    @Override
    public IBinder onBind(Intent intent) {
        return null;
    }

    static PendingIntent immutable(Context context, Intent intent) {
        return PendingIntent.getBroadcast(context, 0, intent, PendingIntent.FLAG_IMMUTABLE | PendingIntent.FLAG_UPDATE_CURRENT);
    }
}
