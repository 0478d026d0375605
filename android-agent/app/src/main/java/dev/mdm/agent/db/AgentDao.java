package dev.mdm.agent.db;

import androidx.room.Dao;
import androidx.room.Insert;
import androidx.room.OnConflictStrategy;
import androidx.room.Query;

import java.util.List;

@Dao
public interface AgentDao {
    @Query("SELECT * FROM device_state WHERE id = 0")
    Rows.StateRow state();

    @Insert(onConflict = OnConflictStrategy.REPLACE)
    void putState(Rows.StateRow row);

    @Query("SELECT * FROM commands WHERE id = :id")
    Rows.CommandRow command(String id);

    @Query("SELECT * FROM commands ORDER BY seq")
    List<Rows.CommandRow> commands();

    @Insert(onConflict = OnConflictStrategy.REPLACE)
    void putCommand(Rows.CommandRow row);

    @Query("DELETE FROM commands WHERE id = :id")
    void deleteCommand(String id);

    @Query("SELECT * FROM seen_ids WHERE id = :id")
    Rows.SeenIdRow seen(String id);

    @Insert(onConflict = OnConflictStrategy.REPLACE)
    void putSeen(Rows.SeenIdRow row);

    @Query("DELETE FROM seen_ids WHERE forget_at < :now")
    int pruneSeen(long now);

    @Query("SELECT COUNT(*) FROM seen_ids")
    int seenCount();

    @Query("SELECT * FROM policy WHERE id = 0")
    Rows.PolicyRow policy();

    @Insert(onConflict = OnConflictStrategy.REPLACE)
    void putPolicy(Rows.PolicyRow row);
}
