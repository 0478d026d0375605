package dev.mdm.agent;

import android.app.PendingIntent;
import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;
import android.content.IntentSender;
import android.content.pm.PackageInstaller;
import android.os.Build;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import dev.mdm.agent.core.exec.CommandResult;

/** Turns PackageInstaller's asynchronous status broadcast into a result the executor waits for. */
public final class PackageResultReceiver extends BroadcastReceiver {
    private static final String TOKEN = "token";
    private static final Map<Integer, Waiter> WAITERS = new ConcurrentHashMap<>();

    static final class Waiter {
        private final CountDownLatch done = new CountDownLatch(1);
        private volatile int status = PackageInstaller.STATUS_FAILURE;
        private volatile String message;

        CommandResult await(long timeoutS, String what) throws InterruptedException {
            if (!done.await(timeoutS, TimeUnit.SECONDS)) {
                return CommandResult.failed(what + ": no answer from the package installer in " + timeoutS + " s");
            }
            if (status == PackageInstaller.STATUS_SUCCESS) {
                return CommandResult.succeeded(0, what + ": done");
            }
            return CommandResult.failed(status, message, what + " failed (status " + status + "): " + message);
        }
    }

    static Waiter expect(int token) {
        Waiter w = new Waiter();
        WAITERS.put(token, w);
        return w;
    }

    static IntentSender intentSender(Context context, int token) {
        Intent intent = new Intent(context, PackageResultReceiver.class).putExtra(TOKEN, token);
        // Mutable: the installer adds its status extras to this intent.
        int flags = PendingIntent.FLAG_UPDATE_CURRENT | (Build.VERSION.SDK_INT >= 31 ? PendingIntent.FLAG_MUTABLE : 0);
        return PendingIntent.getBroadcast(context, token, intent, flags).getIntentSender();
    }

    @Override
    public void onReceive(Context context, Intent intent) {
        Waiter w = WAITERS.remove(intent.getIntExtra(TOKEN, Integer.MIN_VALUE));
        if (w == null) {
            return;
        }
        w.status = intent.getIntExtra(PackageInstaller.EXTRA_STATUS, PackageInstaller.STATUS_FAILURE);
        w.message = intent.getStringExtra(PackageInstaller.EXTRA_STATUS_MESSAGE);
        if (w.status == PackageInstaller.STATUS_PENDING_USER_ACTION) {
            w.message = "the installer asked for user action: is the agent the Device Owner?";
        }
        w.done.countDown();
    }
}
