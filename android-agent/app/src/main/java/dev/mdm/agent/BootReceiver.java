package dev.mdm.agent;

import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;

/** After a boot the agent runs again (heartbeat first); after its own update, SelfUpdateReceiver. */
public final class BootReceiver extends BroadcastReceiver {
    @Override
    public void onReceive(Context context, Intent intent) {
        if (new AgentSettings(context).isConfigured()) {
            AgentService.start(context);
        }
    }
}
