package dev.mdm.agent;

import android.content.Context;

import androidx.annotation.NonNull;
import androidx.work.ExistingPeriodicWorkPolicy;
import androidx.work.PeriodicWorkRequest;
import androidx.work.WorkManager;
import androidx.work.Worker;
import androidx.work.WorkerParameters;

import java.util.concurrent.TimeUnit;

/** WorkManager only as a watchdog: every 15 minutes, restart the foreground service if it died. */
public final class WatchdogWorker extends Worker {
    public WatchdogWorker(@NonNull Context context, @NonNull WorkerParameters params) {
        super(context, params);
    }

    static void schedule(Context context) {
        PeriodicWorkRequest request = new PeriodicWorkRequest.Builder(WatchdogWorker.class, 15, TimeUnit.MINUTES).build();
        WorkManager.getInstance(context).enqueueUniquePeriodicWork("agent-watchdog", ExistingPeriodicWorkPolicy.KEEP, request);
    }

    @NonNull
    @Override
    public Result doWork() {
        if (new AgentSettings(getApplicationContext()).isConfigured()) {
            // A Device Owner may start a foreground service from the background.
            AgentService.start(getApplicationContext());
        }
        return Result.success();
    }
}
