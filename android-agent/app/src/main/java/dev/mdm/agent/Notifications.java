package dev.mdm.agent;

import android.app.Notification;
import android.app.NotificationChannel;
import android.app.NotificationManager;
import android.content.Context;

import androidx.core.app.NotificationCompat;

/** The one quiet ongoing notification a foreground service (and expedited work before Android 12) needs. */
final class Notifications {
    static final int ONGOING_ID = 1;
    private static final String CHANNEL = "agent";

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
}
