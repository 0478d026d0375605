package dev.mdm.agent.core.store;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;

import org.json.JSONObject;

import dev.mdm.agent.core.util.Json;

/** A JSON object in a file, replaced atomically: write a temp file, fsync, rename over. */
public final class JsonFile {
    private final File file;

    public JsonFile(File file) {
        this.file = file;
    }

    /** The stored object, or null if there is none yet. A corrupt file is an error, not a reset. */
    public synchronized JSONObject read() {
        if (!file.isFile()) {
            return null;
        }
        try {
            String text = new String(Files.readAllBytes(file.toPath()), StandardCharsets.UTF_8);
            JSONObject o = Json.parseObjectOrNull(text);
            if (o == null) {
                throw new IllegalStateException("corrupt state file " + file);
            }
            return o;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public synchronized void write(JSONObject o) {
        File dir = file.getAbsoluteFile().getParentFile();
        File tmp = new File(dir, file.getName() + ".tmp");
        try {
            Files.createDirectories(dir.toPath());
            try (FileOutputStream out = new FileOutputStream(tmp)) {
                out.write(o.toString().getBytes(StandardCharsets.UTF_8));
                out.getFD().sync();
            }
            // Holds the device token and envelopes that may carry secrets.
            tmp.setReadable(false, false);
            tmp.setReadable(true, true);
            try {
                Files.move(tmp.toPath(), file.toPath(), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp.toPath(), file.toPath(), StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }
}
