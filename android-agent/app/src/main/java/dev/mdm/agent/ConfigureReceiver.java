package dev.mdm.agent;

import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;
import android.util.Log;

/**
 * adb provisioning, after `dpm set-device-owner`:
 * adb shell am broadcast -a dev.mdm.agent.CONFIGURE -n dev.mdm.agent/.ConfigureReceiver
 *   --es server_url https://mdm.example.com --es enroll_key KEY
 * Guarded by the DUMP permission (the shell has it, apps cannot) and refused once enrolled, so no
 * app on the device can point the agent at another server.
 */
public final class ConfigureReceiver extends BroadcastReceiver {
    @Override
    public void onReceive(Context context, Intent intent) {
        PendingResult pending = goAsync(); // the enrolled check reads the database: not on the main thread
        new Thread(() -> {
            try {
                if (AgentRuntime.get(context).isEnrolled()) {
                    Log.w(AgentRuntime.TAG, "already enrolled: configuration ignored (clear the app data to change it)");
                    return;
                }
                AgentSettings settings = new AgentSettings(context);
                if (!settings.saveFrom(intent.getExtras())) {
                    Log.e(AgentRuntime.TAG, "configuration refused: " + settings.provisioningError());
                    Notifications.provisioningFailed(context, settings.provisioningError());
                    pending.setResultCode(2); // `am broadcast` prints "result=2": the one-liner can tell
                    return;
                }
                DeviceOwner.selfGrant(context);
                AgentService.start(context);
            } finally {
                pending.finish();
            }
        }, "mdm-agent-configure").start();
    }
}
