package dev.mdm.agent;

import android.content.Context;
import android.content.pm.ServiceInfo;
import android.os.Build;

import androidx.annotation.NonNull;
import androidx.work.Data;
import androidx.work.ForegroundInfo;
import androidx.work.OneTimeWorkRequest;
import androidx.work.OutOfQuotaPolicy;
import androidx.work.WorkManager;
import androidx.work.Worker;
import androidx.work.WorkerParameters;

import java.util.HashMap;
import java.util.Map;

import dev.mdm.agent.core.Agent;

/** Expedited work for a push FCM delivered with lowered priority: feed it to the agent now. */
public final class PushWorker extends Worker {
    private static final int MAX_STEPS = 20;

    public PushWorker(@NonNull Context context, @NonNull WorkerParameters params) {
        super(context, params);
    }

    static void enqueue(Context context, Map<String, String> data) {
        Data.Builder input = new Data.Builder();
        for (Map.Entry<String, String> e : data.entrySet()) {
            input.putString(e.getKey(), e.getValue());
        }
        OneTimeWorkRequest request = new OneTimeWorkRequest.Builder(PushWorker.class)
                .setExpedited(OutOfQuotaPolicy.RUN_AS_NON_EXPEDITED_WORK_REQUEST)
                .setInputData(input.build())
                .build();
        WorkManager.getInstance(context).enqueue(request);
    }

    @NonNull
    @Override
    public Result doWork() {
        Agent agent = AgentRuntime.get(getApplicationContext()).agent();
        if (agent == null) {
            return Result.success();
        }
        Map<String, String> data = new HashMap<>();
        for (Map.Entry<String, Object> e : getInputData().getKeyValueMap().entrySet()) {
            if (e.getValue() instanceof String) {
                data.put(e.getKey(), (String) e.getValue());
            }
        }
        agent.onPush(data);
        if (!AgentService.isLoopAlive()) {
            // No foreground loop to pick it up: run the due steps here (heartbeat first, as always).
            agent.start();
            for (int i = 0; i < MAX_STEPS && agent.step() == 0; i++) {
                // keep going while work is due at once
            }
        }
        return Result.success();
    }

    /** Expedited work runs as a foreground service before Android 12, which needs a notification. */
    @NonNull
    @Override
    public ForegroundInfo getForegroundInfo() {
        int type = Build.VERSION.SDK_INT >= 34 ? ServiceInfo.FOREGROUND_SERVICE_TYPE_SPECIAL_USE : 0;
        return Build.VERSION.SDK_INT >= 29
                ? new ForegroundInfo(Notifications.ONGOING_ID + 1, Notifications.ongoing(getApplicationContext()), type)
                : new ForegroundInfo(Notifications.ONGOING_ID + 1, Notifications.ongoing(getApplicationContext()));
    }
}
