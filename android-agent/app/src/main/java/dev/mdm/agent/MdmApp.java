package dev.mdm.agent;

import android.app.Application;
import android.util.Log;

import com.google.firebase.FirebaseApp;
import com.google.firebase.FirebaseOptions;

/** Initialises Firebase from BuildConfig when the build carried FCM settings, and the watchdog. */
public final class MdmApp extends Application {
    @Override
    public void onCreate() {
        super.onCreate();
        initFirebase();
        WatchdogWorker.schedule(this);
    }

    private void initFirebase() {
        if (BuildConfig.FCM_APP_ID.isEmpty() || !FirebaseApp.getApps(this).isEmpty()) {
            Log.i(AgentRuntime.TAG, "FCM not configured in this build: pull only");
            return;
        }
        FirebaseApp.initializeApp(this, new FirebaseOptions.Builder()
                .setProjectId(BuildConfig.FCM_PROJECT_ID)
                .setApplicationId(BuildConfig.FCM_APP_ID)
                .setApiKey(BuildConfig.FCM_API_KEY)
                .setGcmSenderId(BuildConfig.FCM_SENDER_ID)
                .build());
    }

    static boolean pushEnabled() {
        return !BuildConfig.FCM_APP_ID.isEmpty();
    }
}
