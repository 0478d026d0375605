package dev.mdm.agent.db;

import java.util.ArrayList;
import java.util.List;

import org.json.JSONObject;

import dev.mdm.agent.core.store.CommandRecord;
import dev.mdm.agent.core.store.CommandStore;
import dev.mdm.agent.core.store.DeviceState;
import dev.mdm.agent.core.store.PolicyStore;
import dev.mdm.agent.core.store.SeenIdStore;
import dev.mdm.agent.core.store.StateStore;
import dev.mdm.agent.core.util.Json;

/** Room-backed implementations of the core's store interfaces. */
final class RoomStores {
    private RoomStores() {}

    static final class State implements StateStore {
        private final AgentDao dao;

        State(AgentDao dao) {
            this.dao = dao;
        }

        @Override
        public DeviceState load() {
            Rows.StateRow row = dao.state();
            return DeviceState.fromJson(row == null ? null : Json.parseObjectOrNull(row.json));
        }

        @Override
        public void save(DeviceState state) {
            Rows.StateRow row = new Rows.StateRow();
            row.json = state.toJson().toString();
            dao.putState(row);
        }
    }

    static final class Commands implements CommandStore {
        private final AgentDao dao;

        Commands(AgentDao dao) {
            this.dao = dao;
        }

        @Override
        public void put(CommandRecord record) {
            Rows.CommandRow row = new Rows.CommandRow();
            row.id = record.id;
            row.seq = record.seq;
            row.state = record.state.name();
            row.json = record.toJson().toString();
            dao.putCommand(row);
        }

        @Override
        public CommandRecord get(String id) {
            Rows.CommandRow row = dao.command(id);
            return row == null ? null : CommandRecord.fromJson(Json.parseObjectOrNull(row.json));
        }

        @Override
        public void remove(String id) {
            dao.deleteCommand(id);
        }

        @Override
        public List<CommandRecord> all() {
            List<CommandRecord> out = new ArrayList<>();
            for (Rows.CommandRow row : dao.commands()) {
                CommandRecord r = CommandRecord.fromJson(Json.parseObjectOrNull(row.json));
                if (r != null) {
                    out.add(r);
                }
            }
            return out;
        }
    }

    static final class SeenIds implements SeenIdStore {
        private final AgentDao dao;

        SeenIds(AgentDao dao) {
            this.dao = dao;
        }

        @Override
        public Entry get(String id) {
            Rows.SeenIdRow row = dao.seen(id);
            if (row == null) {
                return null;
            }
            JSONObject result = row.finalResult == null ? null : Json.parseObjectOrNull(row.finalResult);
            return new Entry(row.forgetAt, result);
        }

        @Override
        public void put(String id, Entry entry) {
            Rows.SeenIdRow row = new Rows.SeenIdRow();
            row.id = id;
            row.forgetAt = entry.forgetAtS;
            row.finalResult = entry.finalResult == null ? null : entry.finalResult.toString();
            dao.putSeen(row);
        }

        @Override
        public int prune(long serverNowS) {
            return dao.pruneSeen(serverNowS);
        }

        @Override
        public int size() {
            return dao.seenCount();
        }
    }

    static final class Policy implements PolicyStore {
        private final AgentDao dao;

        Policy(AgentDao dao) {
            this.dao = dao;
        }

        @Override
        public JSONObject load() {
            Rows.PolicyRow row = dao.policy();
            return row == null ? null : Json.parseObjectOrNull(row.json);
        }

        @Override
        public void save(JSONObject record) {
            Rows.PolicyRow row = new Rows.PolicyRow();
            row.json = record.toString();
            dao.putPolicy(row);
        }
    }
}
