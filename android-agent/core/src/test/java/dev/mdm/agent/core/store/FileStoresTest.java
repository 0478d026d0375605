package dev.mdm.agent.core.store;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.Arrays;

import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

import dev.mdm.agent.core.envelope.Command;
import dev.mdm.agent.core.envelope.CommandKey;
import dev.mdm.agent.core.util.Json;

public class FileStoresTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    @Test
    public void everything_survives_a_reopen() throws Exception {
        File dir = tmp.newFolder();
        Stores s = FileStores.open(dir);
        DeviceState st = s.state.load();
        st.hardwareId = "hw";
        st.deviceId = "d";
        st.deviceToken = "t";
        st.keys = Arrays.asList(new CommandKey("k1", new byte[] {1, 2, 3}));
        st.lastSeq = 9;
        st.badEnvelopes = 2;
        s.state.save(st);
        Command c = new Command("c1", "d", 10, "wifi_configure", Json.obj("ssid", "x"), 100, 200);
        s.commands.put(CommandRecord.pending(c, "{\"payload\":\"...\"}"));
        s.seenIds.put("c1", new SeenIdStore.Entry(200 + 86400, null));
        s.seenIds.put("c0", new SeenIdStore.Entry(50, Json.obj("status", "succeeded")));

        Stores again = FileStores.open(dir);
        DeviceState back = again.state.load();
        assertEquals("d", back.deviceId);
        assertEquals("t", back.deviceToken);
        assertEquals("k1", back.keys.get(0).kid);
        assertEquals(9, back.lastSeq);
        assertEquals(2, back.badEnvelopes);
        CommandRecord r = again.commands.get("c1");
        assertEquals(CommandRecord.State.PENDING, r.state);
        assertEquals("x", r.params.optString("ssid"));
        assertEquals(10, r.seq);
        assertEquals("succeeded", again.seenIds.get("c0").finalResult.optString("status"));
        assertNull(again.seenIds.get("c1").finalResult);
        assertFalse(new File(dir, "state.json.tmp").exists());
    }

    @Test
    public void seen_ids_are_forgotten_one_day_after_expiry() {
        SeenIdStore seen = new InMemorySeenIdStore();
        seen.put("a", new SeenIdStore.Entry(1000 + SeenIdStore.FORGET_AFTER_EXPIRY_S, null));
        assertEquals(0, seen.prune(1000 + 86400));
        assertNotNull(seen.get("a"));
        assertEquals(1, seen.prune(1000 + 86401));
        assertNull(seen.get("a"));
        assertEquals(0, seen.size());
    }

    @Test
    public void records_are_removed_and_stay_removed() throws Exception {
        File dir = tmp.newFolder();
        Stores s = FileStores.open(dir);
        s.commands.put(CommandRecord.resend("c9", Json.obj("status", "failed")));
        assertEquals(1, FileStores.open(dir).commands.all().size());
        s.commands.remove("c9");
        assertTrue(FileStores.open(dir).commands.all().isEmpty());
    }

    @Test
    public void in_memory_stores_hand_out_copies() {
        Stores s = Stores.inMemory();
        DeviceState st = s.state.load();
        st.deviceId = "changed";
        assertNull(s.state.load().deviceId);
        s.commands.put(CommandRecord.resend("c", Json.obj("status", "failed")));
        s.commands.get("c").state = CommandRecord.State.PENDING;
        assertEquals(CommandRecord.State.DONE, s.commands.get("c").state);
    }
}
