package dev.mdm.agent;

import androidx.annotation.NonNull;

import com.google.firebase.messaging.FirebaseMessagingService;
import com.google.firebase.messaging.RemoteMessage;

import java.util.Map;

import dev.mdm.agent.core.Agent;

/**
 * FCM into the core: {"kind": "command", "envelope": ...} goes through the same verifier as the
 * pull path, {"kind": "sync"} pulls. A message FCM downgraded from high priority may not start a
 * foreground service, so it is handed to expedited work instead.
 */
public final class PushService extends FirebaseMessagingService {
    @Override
    public void onMessageReceived(@NonNull RemoteMessage message) {
        Map<String, String> data = message.getData();
        boolean downgraded = message.getOriginalPriority() == RemoteMessage.PRIORITY_HIGH
                && message.getPriority() != RemoteMessage.PRIORITY_HIGH;
        if (downgraded) {
            PushWorker.enqueue(this, data);
            return;
        }
        Agent agent = AgentRuntime.get(this).agent();
        if (agent != null) {
            agent.onPush(data);
            AgentService.start(this); // a high-priority message may start it if it had died
        }
    }

    /** FCM dropped messages for this device: the pull path has them all. */
    @Override
    public void onDeletedMessages() {
        Agent agent = AgentRuntime.get(this).agent();
        if (agent != null) {
            agent.requestPull();
        }
    }

    @Override
    public void onNewToken(@NonNull String token) {
        Agent agent = AgentRuntime.get(this).agent();
        if (agent != null) {
            agent.onNewFcmToken(token); // heartbeats at once
        }
    }
}
