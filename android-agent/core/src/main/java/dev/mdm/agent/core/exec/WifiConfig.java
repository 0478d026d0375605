package dev.mdm.agent.core.exec;

/** wifi_configure's params, validated. The password is a secret: never log or echo it. */
public final class WifiConfig {
    public final String ssid;
    public final String security;
    public final String password;
    public final boolean hidden;

    public WifiConfig(String ssid, String security, String password, boolean hidden) {
        this.ssid = ssid;
        this.security = security;
        this.password = password;
        this.hidden = hidden;
    }

    @Override
    public String toString() {
        return "WifiConfig(" + ssid + ", " + security + ", hidden=" + hidden + ")";
    }
}
