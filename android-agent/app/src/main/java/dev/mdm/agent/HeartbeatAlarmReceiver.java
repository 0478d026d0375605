package dev.mdm.agent;

import android.app.PendingIntent;
import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;

import dev.mdm.agent.core.Agent;

/** The while-idle alarm set by AgentService: wakes the loop when its next step is due. */
public final class HeartbeatAlarmReceiver extends BroadcastReceiver {
    static PendingIntent pendingIntent(Context context) {
        return AgentService.immutable(context, new Intent(context, HeartbeatAlarmReceiver.class));
    }

    @Override
    public void onReceive(Context context, Intent intent) {
        Agent agent = AgentRuntime.get(context).agent();
        if (agent != null) {
            agent.retryNow();
        }
    }
}
