package dev.mdm.agent;

import android.app.admin.DeviceAdminReceiver;
import android.app.admin.DevicePolicyManager;
import android.content.ComponentName;
import android.content.Context;
import android.content.Intent;
import android.os.PersistableBundle;

/** The Device Owner component: provisioning hands it the admin extras, then the agent starts. */
public final class AdminReceiver extends DeviceAdminReceiver {
    public static ComponentName component(Context context) {
        return new ComponentName(context, AdminReceiver.class);
    }

    @Override
    public void onProfileProvisioningComplete(Context context, Intent intent) {
        PersistableBundle extras = intent.getParcelableExtra(DevicePolicyManager.EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE);
        new AgentSettings(context).saveFrom(extras);
        DeviceOwner.selfGrant(context);
        AgentService.start(context);
    }

    @Override
    public void onEnabled(Context context, Intent intent) {
        if (new AgentSettings(context).isConfigured()) {
            AgentService.start(context);
        }
    }
}
