package dev.mdm.agent.core.exec;

import java.io.File;
import java.io.IOException;

import dev.mdm.agent.core.net.ApiException;
import dev.mdm.agent.core.net.DeviceApi;

/** Brings an install_apk's file to the device, checked; IOException means "try again later". */
public interface ApkFetcher {
    File fetch(ApkSpec spec) throws IOException, ApiException;

    /** Downloads through the device API into dir, resuming a partial file from an earlier attempt. */
    static ApkFetcher downloading(DeviceApi api, File dir) {
        return spec -> {
            if (!dir.isDirectory() && !dir.mkdirs()) {
                throw new IOException("cannot create " + dir);
            }
            String name = spec.apkId.replaceAll("[^A-Za-z0-9._-]", "_") + "-" + spec.sha256.substring(0, 12) + ".apk";
            return api.downloadApk(spec.apkId, new File(dir, name), spec.sha256, spec.size);
        };
    }
}
