package dev.mdm.agent.core.store;

import java.io.File;
import java.util.Iterator;
import java.util.Map;

import org.json.JSONObject;

import dev.mdm.agent.core.util.Json;

/**
 * File-backed stores for the headless runner (and any plain-Java host): one JSON file each in a
 * state directory, rewritten atomically on every change. Small by design: the queue holds tens of
 * records and the seen ids those of the last days.
 */
public final class FileStores {
    private FileStores() {}

    public static Stores open(File dir) {
        return new Stores(new FileState(new JsonFile(new File(dir, "state.json"))),
                new FileCommands(new JsonFile(new File(dir, "commands.json"))),
                new FileSeenIds(new JsonFile(new File(dir, "seen-ids.json"))),
                new FilePolicy(new JsonFile(new File(dir, "policy.json"))));
    }

    static final class FileState extends InMemoryStateStore {
        private final JsonFile file;

        FileState(JsonFile file) {
            this.file = file;
            JSONObject o = file.read();
            if (o != null) {
                super.save(DeviceState.fromJson(o));
            }
        }

        @Override
        protected void persist(DeviceState s) {
            file.write(s.toJson());
        }
    }

    /** Written like the other files: owner-readable only, as it may hold Wi-Fi passwords. */
    static final class FilePolicy extends PolicyStore.InMemory {
        private final JsonFile file;

        FilePolicy(JsonFile file) {
            this.file = file;
            JSONObject o = file.read();
            if (o != null) {
                super.save(o);
            }
        }

        @Override
        protected void persist(JSONObject record) {
            file.write(record);
        }
    }

    static final class FileCommands extends InMemoryCommandStore {
        private final JsonFile file;

        FileCommands(JsonFile file) {
            this.file = file;
            JSONObject o = file.read();
            if (o != null) {
                for (Iterator<String> it = o.keys(); it.hasNext(); ) {
                    CommandRecord r = CommandRecord.fromJson(o.optJSONObject(it.next()));
                    if (r != null) {
                        records.put(r.id, r);
                    }
                }
            }
        }

        @Override
        protected void persist() {
            JSONObject o = new JSONObject();
            for (CommandRecord r : records.values()) {
                Json.put(o, r.id, r.toJson());
            }
            file.write(o);
        }
    }

    static final class FileSeenIds extends InMemorySeenIdStore {
        private final JsonFile file;

        FileSeenIds(JsonFile file) {
            this.file = file;
            JSONObject o = file.read();
            if (o != null) {
                for (Iterator<String> it = o.keys(); it.hasNext(); ) {
                    String id = it.next();
                    JSONObject e = o.optJSONObject(id);
                    if (e != null) {
                        entries.put(id, new Entry(Json.integer(e, "forget_at", 0), e.optJSONObject("final_result")));
                    }
                }
            }
        }

        @Override
        protected void persist() {
            JSONObject o = new JSONObject();
            for (Map.Entry<String, Entry> e : entries.entrySet()) {
                Json.put(o, e.getKey(), Json.obj("forget_at", e.getValue().forgetAtS, "final_result", e.getValue().finalResult));
            }
            file.write(o);
        }
    }
}
