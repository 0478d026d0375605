package dev.mdm.agent.db;

import android.content.Context;

import androidx.room.Database;
import androidx.room.Room;
import androidx.room.RoomDatabase;

import dev.mdm.agent.core.store.Stores;

/**
 * The agent's queue, outbox, seen ids and state in SQLite. Called only from the agent's own
 * threads (never the main thread); every write is durable when it returns, which is what makes
 * result reporting at-least-once across restarts.
 */
@Database(entities = {Rows.StateRow.class, Rows.CommandRow.class, Rows.SeenIdRow.class}, version = 1, exportSchema = false)
public abstract class AgentDatabase extends RoomDatabase {
    private static AgentDatabase instance;

    public abstract AgentDao dao();

    public static synchronized AgentDatabase get(Context context) {
        if (instance == null) {
            instance = Room.databaseBuilder(context.getApplicationContext(), AgentDatabase.class, "agent.db")
                    .setJournalMode(JournalMode.WRITE_AHEAD_LOGGING)
                    .build();
        }
        return instance;
    }

    public Stores stores() {
        return new Stores(new RoomStores.State(dao()), new RoomStores.Commands(dao()), new RoomStores.SeenIds(dao()));
    }
}
