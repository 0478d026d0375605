package dev.mdm.agent;

import android.app.Activity;
import android.app.admin.DevicePolicyManager;
import android.content.Intent;
import android.os.Bundle;
import android.os.PersistableBundle;

/**
 * Android 12+ provisioning: GET_PROVISIONING_MODE answers "fully managed" (Device Owner), and
 * ADMIN_POLICY_COMPLIANCE receives the admin extras (server_url, enroll_key) and starts the agent.
 */
public final class ProvisioningActivity extends Activity {
    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        Intent intent = getIntent();
        String action = intent.getAction();
        if (DevicePolicyManager.ACTION_GET_PROVISIONING_MODE.equals(action)) {
            Intent result = new Intent();
            result.putExtra(DevicePolicyManager.EXTRA_PROVISIONING_MODE,
                    DevicePolicyManager.PROVISIONING_MODE_FULLY_MANAGED_DEVICE);
            setResult(RESULT_OK, result);
        } else if (DevicePolicyManager.ACTION_ADMIN_POLICY_COMPLIANCE.equals(action)) {
            PersistableBundle extras = intent.getParcelableExtra(DevicePolicyManager.EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE);
            AgentSettings settings = new AgentSettings(this);
            DeviceOwner.selfGrant(this);
            if (settings.saveFrom(extras)) {
                AgentService.start(this);
            } else {
                // Provisioning itself succeeded (the agent is Device Owner); the enrollment
                // material did not: say so on screen instead of crash-looping the service.
                Notifications.provisioningFailed(this, settings.provisioningError());
            }
            setResult(RESULT_OK);
        } else {
            setResult(RESULT_CANCELED);
        }
        finish();
    }
}
