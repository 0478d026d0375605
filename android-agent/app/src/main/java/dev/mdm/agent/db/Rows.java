package dev.mdm.agent.db;

import androidx.annotation.NonNull;
import androidx.room.ColumnInfo;
import androidx.room.Entity;
import androidx.room.PrimaryKey;

/** Room rows: each holds the core's own JSON form, so the core stays the one definition of it. */
public final class Rows {
    private Rows() {}

    @Entity(tableName = "device_state")
    public static class StateRow {
        @PrimaryKey
        public int id = 0;
        @NonNull
        @ColumnInfo(name = "json")
        public String json = "{}";
    }

    @Entity(tableName = "commands")
    public static class CommandRow {
        @PrimaryKey
        @NonNull
        public String id = "";
        public long seq;
        @NonNull
        public String state = "";
        @NonNull
        public String json = "{}";
    }

    @Entity(tableName = "seen_ids")
    public static class SeenIdRow {
        @PrimaryKey
        @NonNull
        public String id = "";
        @ColumnInfo(name = "forget_at")
        public long forgetAt;
        @ColumnInfo(name = "final_result")
        public String finalResult;
    }

    /** v1.1: the one policy record (document, applied values, status). It may hold Wi-Fi passwords. */
    @Entity(tableName = "policy")
    public static class PolicyRow {
        @PrimaryKey
        public int id = 0;
        @NonNull
        @ColumnInfo(name = "json")
        public String json = "{}";
    }
}
