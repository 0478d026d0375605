package dev.mdm.agent.core.telemetry;

import static org.junit.Assert.assertEquals;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

import org.junit.Test;

/** Expected values computed with Python: sorted(lines, key=str.encode), sha256 hexdigest. */
public class AppsHashTest {
    private static final List<AppInfo> APPS = Arrays.asList(
            new AppInfo("com.b.app", "1.2", 12, false, true),
            new AppInfo("com.a", "x", 3, true, false),
            new AppInfo("com.a.b", null, 7, false, true),
            new AppInfo("com.\u00e4.x", "1", 1, false, true),
            new AppInfo("com.Z", "2", 2, false, true));

    @Test
    public void it_hashes_sorted_utf8_lines_as_the_protocol_says() {
        assertEquals("e1bd0df261d97311f77087809ca65929cb2d807b5c06cf5478cce6a8c5de760b", AppsHash.of(APPS));
    }

    @Test
    public void order_of_the_input_does_not_matter() {
        List<AppInfo> reversed = new java.util.ArrayList<>(APPS);
        Collections.reverse(reversed);
        assertEquals(AppsHash.of(APPS), AppsHash.of(reversed));
    }

    @Test
    public void version_name_and_system_do_not_count_but_enabled_does() {
        AppInfo a = new AppInfo("com.a", "one", 1, false, true);
        AppInfo b = new AppInfo("com.a", "two", 1, true, true);
        AppInfo c = new AppInfo("com.a", "one", 1, false, false);
        assertEquals(AppsHash.of(Collections.singletonList(a)), AppsHash.of(Collections.singletonList(b)));
        assertEquals(false, AppsHash.of(Collections.singletonList(a)).equals(AppsHash.of(Collections.singletonList(c))));
    }

    @Test
    public void no_apps_hash_the_empty_string() {
        assertEquals("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", AppsHash.of(Collections.emptyList()));
    }
}
