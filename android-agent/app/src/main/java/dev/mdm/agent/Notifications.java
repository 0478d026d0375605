package dev.mdm.agent;

import android.app.Notification;
import android.app.NotificationChannel;
import android.app.NotificationManager;
import android.content.Context;

import androidx.core.app.NotificationCompat;

/** The one quiet ongoing notification a foreground service (and expedited work before Android 12) needs. */
final class Notifications {
    static final int ONGOING_ID = 1;
    static final int PROVISIONING_ID = 2;
    private static final String CHANNEL = "agent";
    private static final String CHANNEL_PROBLEMS = "agent-problems";

    private Notifications() {}

    static Notification ongoing(Context context) {
        NotificationManager nm = context.getSystemService(NotificationManager.class);
        nm.createNotificationChannel(new NotificationChannel(CHANNEL, context.getString(R.string.channel_name),
                NotificationManager.IMPORTANCE_MIN));
        return new NotificationCompat.Builder(context, CHANNEL)
                .setSmallIcon(android.R.drawable.stat_notify_sync_noanim)
                .setContentTitle(context.getString(R.string.app_name))
                .setContentText(context.getString(R.string.notification_text))
                .setOngoing(true)
                .setPriority(NotificationCompat.PRIORITY_MIN)
                .build();
    }

    /** A provisioning whose server_url (or key) cannot work: visible on the device, high priority. */
    static void provisioningFailed(Context context, String reason) {
        NotificationManager nm = context.getSystemService(NotificationManager.class);
        nm.createNotificationChannel(new NotificationChannel(CHANNEL_PROBLEMS, context.getString(R.string.app_name),
                NotificationManager.IMPORTANCE_HIGH));
        nm.notify(PROVISIONING_ID, new NotificationCompat.Builder(context, CHANNEL_PROBLEMS)
                .setSmallIcon(android.R.drawable.stat_notify_error)
                .setContentTitle(context.getString(R.string.provisioning_failed))
                .setContentText(reason)
                .setStyle(new NotificationCompat.BigTextStyle().bigText(reason))
                .setPriority(NotificationCompat.PRIORITY_HIGH)
                .build());
    }
}
