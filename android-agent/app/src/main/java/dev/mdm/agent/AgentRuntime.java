package dev.mdm.agent;

import android.content.Context;

import java.io.File;
import java.security.SecureRandom;

import dev.mdm.agent.core.Agent;
import dev.mdm.agent.core.AgentConfig;
import dev.mdm.agent.core.clock.Clock;
import dev.mdm.agent.core.exec.ApkFetcher;
import dev.mdm.agent.core.exec.CommandRouter;
import dev.mdm.agent.core.exec.ShellAllowlist;
import dev.mdm.agent.core.net.HttpDeviceApi;
import dev.mdm.agent.core.store.Stores;
import dev.mdm.agent.core.util.Json;
import dev.mdm.agent.db.AgentDatabase;

/**
 * The one Agent of the process, wired to the Android implementations of the core's interfaces.
 * The foreground service drives its loop; FCM and receivers only hand it work.
 */
public final class AgentRuntime {
    public static final String TAG = "mdm-agent";
    private static AgentRuntime instance;

    private final Context app;
    private final Stores stores;
    private final AndroidInventory inventory;
    private Agent agent;

    private AgentRuntime(Context context) {
        app = context.getApplicationContext();
        stores = AgentDatabase.get(app).stores();
        inventory = new AndroidInventory(app);
    }

    public static synchronized AgentRuntime get(Context context) {
        if (instance == null) {
            instance = new AgentRuntime(context);
        }
        return instance;
    }

    public boolean isEnrolled() {
        return stores.state.load().isEnrolled();
    }

    public AndroidInventory inventory() {
        return inventory;
    }

    /** The agent, or null until provisioning supplied server_url and enroll_key. */
    public synchronized Agent agent() {
        if (agent == null) {
            AgentSettings settings = new AgentSettings(app);
            if (!settings.isConfigured()) {
                return null;
            }
            AgentConfig config = new AgentConfig();
            config.enrollKey = settings.enrollKey();
            config.hardwareId = DeviceOwner.hardwareId(app);
            config.agentVersion = BuildConfig.VERSION_NAME;
            config.deviceInfo = Json.obj("serial", config.hardwareId, "model", android.os.Build.MODEL,
                    "manufacturer", android.os.Build.MANUFACTURER, "android_version", android.os.Build.VERSION.RELEASE,
                    "sdk_int", android.os.Build.VERSION.SDK_INT);
            HttpDeviceApi api;
            try {
                api = new HttpDeviceApi(settings.serverUrl(), 15_000, 30_000,
                        "mdm-agent/" + BuildConfig.VERSION_NAME + " Android/" + android.os.Build.VERSION.RELEASE);
            } catch (IllegalArgumentException e) {
                // Stored before the check existed: refuse visibly instead of crashing every start.
                android.util.Log.e(TAG, "unusable server_url: " + e.getMessage());
                Notifications.provisioningFailed(app, e.getMessage());
                return null;
            }
            File apkDir = new File(app.getNoBackupFilesDir(), "apks");
            CommandRouter router = new CommandRouter(new AndroidActions(app), ShellAllowlist.defaults(),
                    ApkFetcher.downloading(api, apkDir));
            config.reportProgress = true;
            // Commands (an install can take minutes) run beside the loop, never in its way.
            config.commandExecutor = java.util.concurrent.Executors.newSingleThreadExecutor(
                    r -> new Thread(r, "mdm-agent-command"));
            agent = new Agent(config, api, stores, router, new AndroidPolicy(app), new AndroidTelemetry(app), inventory,
                    ANDROID_CLOCK, new SecureRandom(), new LogcatEvents());
            if (MdmApp.pushEnabled()) {
                Agent created = agent;
                com.google.firebase.messaging.FirebaseMessaging.getInstance().getToken()
                        .addOnSuccessListener(created::onNewFcmToken);
            }
        }
        return agent;
    }

    /** elapsedRealtime keeps counting in deep sleep, unlike nanoTime/uptimeMillis. */
    static final Clock ANDROID_CLOCK = new Clock() {
        @Override
        public long elapsedMs() {
            return android.os.SystemClock.elapsedRealtime();
        }

        @Override
        public long wallMs() {
            return System.currentTimeMillis();
        }
    };
}
