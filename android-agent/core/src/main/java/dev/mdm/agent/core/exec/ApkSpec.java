package dev.mdm.agent.core.exec;

/** install_apk's params, validated. */
public final class ApkSpec {
    public final String apkId;
    public final String packageName;
    public final long versionCode;
    public final String sha256;
    public final long size;

    public ApkSpec(String apkId, String packageName, long versionCode, String sha256, long size) {
        this.apkId = apkId;
        this.packageName = packageName;
        this.versionCode = versionCode;
        this.sha256 = sha256;
        this.size = size;
    }
}
