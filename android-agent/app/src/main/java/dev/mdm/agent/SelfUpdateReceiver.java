package dev.mdm.agent;

import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;
import android.util.Log;

/**
 * The agent after an update of itself (ACTION_MY_PACKAGE_REPLACED, sent only to the replaced
 * package): Android killed the old process in the middle of the install_apk that installed this
 * version and does not restart the foreground service, so this starts it as BootReceiver does
 * after a boot. Agent.start() then finds that install RUNNING and reports it from the package
 * manager (the installed version code equals the command's: succeeded). Starting the foreground
 * service from this broadcast is allowed (an exemption of Android 12's background-start rules,
 * and a Device Owner is exempt anyway).
 */
public final class SelfUpdateReceiver extends BroadcastReceiver {
    @Override
    public void onReceive(Context context, Intent intent) {
        if (!Intent.ACTION_MY_PACKAGE_REPLACED.equals(intent.getAction())) {
            return;
        }
        Log.i(AgentRuntime.TAG, "agent updated to " + BuildConfig.VERSION_NAME + " (" + BuildConfig.VERSION_CODE + ")");
        if (new AgentSettings(context).isConfigured()) {
            AgentService.start(context);
        }
    }
}
