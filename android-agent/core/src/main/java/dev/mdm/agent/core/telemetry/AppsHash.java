package dev.mdm.agent.core.telemetry;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;

import dev.mdm.agent.core.util.Hex;
import dev.mdm.agent.core.util.Sha256;

/**
 * PROTOCOL.md apps_hash: lowercase hex SHA-256 of the lines "package\tversion_code\tenabled\n"
 * ("true"/"false"), sorted by their UTF-8 bytes (unsigned, as Python sorts bytes).
 */
public final class AppsHash {
    private AppsHash() {}

    public static String of(List<AppInfo> apps) {
        List<byte[]> lines = new ArrayList<>(apps.size());
        for (AppInfo a : apps) {
            lines.add((a.packageName + "\t" + a.versionCode + "\t" + (a.enabled ? "true" : "false") + "\n")
                    .getBytes(StandardCharsets.UTF_8));
        }
        lines.sort(AppsHash::compareUnsigned);
        MessageDigest digest = Sha256.newDigest();
        for (byte[] line : lines) {
            digest.update(line);
        }
        return Hex.encode(digest.digest());
    }

    static int compareUnsigned(byte[] a, byte[] b) {
        int n = Math.min(a.length, b.length);
        for (int i = 0; i < n; i++) {
            int c = (a[i] & 0xff) - (b[i] & 0xff);
            if (c != 0) {
                return c;
            }
        }
        return a.length - b.length;
    }
}
