package dev.mdm.agent.core.exec;

import java.io.File;
import java.io.IOException;

import dev.mdm.agent.core.net.ApiException;
import dev.mdm.agent.core.net.DeviceApi;
import dev.mdm.agent.core.util.Sha256;

/** Brings an install_apk's file to the device, checked; IOException means "try again later". */
public interface ApkFetcher {
    File fetch(ApkSpec spec) throws IOException, ApiException;

    /**
     * Forgets whatever an earlier attempt left for spec (a complete file, a partial one): called
     * once the command is final without the router having deleted the file itself, as after a
     * self-update, where Android killed the process in the middle of the install.
     */
    default void discard(ApkSpec spec) {}

    /** Downloads through the device API into dir, resuming a partial file from an earlier attempt. */
    static ApkFetcher downloading(DeviceApi api, File dir) {
        return new Downloading(api, dir);
    }

    final class Downloading implements ApkFetcher {
        private final DeviceApi api;
        private final File dir;

        Downloading(DeviceApi api, File dir) {
            this.api = api;
            this.dir = dir;
        }

        File target(ApkSpec spec) {
            String name = spec.apkId.replaceAll("[^A-Za-z0-9._-]", "_") + "-" + spec.sha256.substring(0, 12) + ".apk";
            return new File(dir, name);
        }

        @Override
        public File fetch(ApkSpec spec) throws IOException, ApiException {
            if (!dir.isDirectory() && !dir.mkdirs()) {
                throw new IOException("cannot create " + dir);
            }
            File dest = target(spec);
            // A complete, checked file is left behind when the process died during the install
            // (the router deletes it only when the install returns): use it, do not fetch again.
            if (dest.isFile() && dest.length() == spec.size && spec.sha256.equalsIgnoreCase(Sha256.hex(dest))) {
                return dest;
            }
            return api.downloadApk(spec.apkId, dest, spec.sha256, spec.size);
        }

        @Override
        public void discard(ApkSpec spec) {
            File dest = target(spec);
            for (File f : new File[] {dest, new File(dest.getPath() + ".part"), new File(dest.getPath() + ".etag")}) {
                if (f.exists() && !f.delete()) {
                    f.deleteOnExit();
                }
            }
        }
    }
}
