package dev.mdm.agent.db;

import android.content.Context;

import androidx.annotation.NonNull;
import androidx.room.Database;
import androidx.room.Room;
import androidx.room.RoomDatabase;
import androidx.room.migration.Migration;
import androidx.sqlite.db.SupportSQLiteDatabase;

import dev.mdm.agent.core.store.Stores;

/**
 * The agent's queue, outbox, seen ids and state in SQLite. Called only from the agent's own
 * threads (never the main thread); every write is durable when it returns, which is what makes
 * result reporting at-least-once across restarts.
 */
@Database(entities = {Rows.StateRow.class, Rows.CommandRow.class, Rows.SeenIdRow.class, Rows.PolicyRow.class},
        version = 2, exportSchema = false)
public abstract class AgentDatabase extends RoomDatabase {
    private static AgentDatabase instance;

    public abstract AgentDao dao();

    /** v1.1 adds the policy record; the queue, outbox and token of an updated agent are kept. */
    static final Migration MIGRATION_1_2 = new Migration(1, 2) {
        @Override
        public void migrate(@NonNull SupportSQLiteDatabase db) {
            db.execSQL("CREATE TABLE IF NOT EXISTS `policy` (`id` INTEGER NOT NULL, `json` TEXT NOT NULL, PRIMARY KEY(`id`))");
        }
    };

    public static synchronized AgentDatabase get(Context context) {
        if (instance == null) {
            instance = Room.databaseBuilder(context.getApplicationContext(), AgentDatabase.class, "agent.db")
                    .setJournalMode(JournalMode.WRITE_AHEAD_LOGGING)
                    .addMigrations(MIGRATION_1_2)
                    .build();
        }
        return instance;
    }

    public Stores stores() {
        return new Stores(new RoomStores.State(dao()), new RoomStores.Commands(dao()), new RoomStores.SeenIds(dao()),
                new RoomStores.Policy(dao()));
    }
}
