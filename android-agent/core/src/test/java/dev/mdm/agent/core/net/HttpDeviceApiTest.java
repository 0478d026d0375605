package dev.mdm.agent.core.net;

import static org.hamcrest.MatcherAssert.assertThat;
import static org.hamcrest.Matchers.contains;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import org.json.JSONObject;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;

import dev.mdm.agent.core.util.Json;
import dev.mdm.agent.core.util.Sha256;

/** The protocol client against a tiny in-test HTTP server. */
public class HttpDeviceApiTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private HttpServer server;
    private HttpServer other;
    private final List<Headers> requestHeaders = new ArrayList<>();
    private final List<String> requestLines = new ArrayList<>();
    private final List<String> bodies = new ArrayList<>();

    @Before
    public void setUp() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.start();
    }

    @After
    public void tearDown() {
        server.stop(0);
        if (other != null) {
            other.stop(0);
        }
    }

    private String base() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private void route(String path, HttpHandler handler) {
        server.createContext(path, ex -> {
            synchronized (requestHeaders) {
                requestHeaders.add(ex.getRequestHeaders());
                requestLines.add(ex.getRequestMethod() + " " + ex.getRequestURI());
                bodies.add(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
            }
            handler.handle(ex);
        });
    }

    private static void json(HttpExchange ex, int status, JSONObject body) throws IOException {
        byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }

    private HttpDeviceApi api() {
        HttpDeviceApi api = new HttpDeviceApi(base(), 2_000, 3_000, "test-agent");
        api.setDeviceToken("tok-1");
        return api;
    }

    @Test
    public void requests_carry_json_headers_and_the_device_token() throws Exception {
        route("/api/v1/device/heartbeat", ex -> json(ex, 200, Json.obj("server_time", 1764086400, "heartbeat_interval_s", 45,
                "commands", Arrays.asList("{\"payload\":\"p\",\"kid\":\"k\",\"sig\":\"00\"}"), "more_commands", true,
                "cancelled", Arrays.asList("c1"), "inventory_requested", true, "ignored_fields", Arrays.asList("battery_pct"))));
        HeartbeatAnswer a = api().heartbeat(Json.obj("battery_pct", 50, "wifi_ssid", "Caf\u00e9"));
        Headers h = requestHeaders.get(0);
        assertEquals("application/json", h.getFirst("Accept"));
        assertEquals("application/json; charset=utf-8", h.getFirst("Content-type"));
        assertEquals("Device tok-1", h.getFirst("Authorization"));
        assertEquals("Caf\u00e9", Json.parseObjectOrNull(bodies.get(0)).optString("wifi_ssid"));
        assertEquals(1764086400, a.serverTime);
        assertEquals(45, a.heartbeatIntervalS);
        assertEquals(1, a.commands.size());
        assertTrue(a.moreCommands);
        assertThat(a.cancelled, contains("c1"));
        assertNull(a.commandKeys);
        assertTrue(a.inventoryRequested);
        assertThat(a.ignoredFields, contains("battery_pct"));
    }

    @Test
    public void enroll_sends_the_admin_key_and_a_token_only_when_given() throws Exception {
        route("/api/v1/enroll", ex -> json(ex, 201, Json.obj("device_id", "d1", "device_token", "t1",
                "heartbeat_interval_s", 30, "server_time", 1764086400,
                "command_keys", Arrays.asList(Json.obj("kid", "k2", "key", "Z/qDkBDDIoAfb1cekNp8uxgFaUI60G+wcNL9FlKlr1I=")))));
        HttpDeviceApi api = new HttpDeviceApi(base());
        EnrollAnswer a = api.enroll("ek", Json.obj("hardware_id", "hw"), null);
        assertEquals(201, a.status);
        assertEquals("d1", a.deviceId);
        assertEquals("t1", a.deviceToken);
        assertEquals("k2", a.commandKeys.get(0).kid);
        assertEquals("ek", requestHeaders.get(0).getFirst("X-Admin-Key"));
        assertNull(requestHeaders.get(0).getFirst("Authorization"));
        api.enroll("ek", Json.obj("hardware_id", "hw"), "old-token");
        assertEquals("Device old-token", requestHeaders.get(1).getFirst("Authorization"));
    }

    @Test
    public void a_409_reenroll_needs_approval_carries_its_request_id() throws Exception {
        route("/api/v1/enroll", ex -> json(ex, 409, Json.obj("detail", "needs an admin", "code", "reenroll_needs_approval",
                "reenroll_request", "8d0c7a4e-2f51-4b53-9e0e-6f1a2b3c4d5e")));
        try {
            api().enroll("ek", Json.obj("hardware_id", "hw", "reenroll_request", "old-id"), null);
            fail();
        } catch (ApiException e) {
            assertTrue(e.isReenrollNeedsApproval());
            assertFalse(e.isRetryable());
            assertEquals("8d0c7a4e-2f51-4b53-9e0e-6f1a2b3c4d5e", e.reenrollRequest);
        }
        assertEquals("old-id", new JSONObject(bodies.get(0)).getString("reenroll_request"));
    }

    @Test
    public void error_bodies_become_typed_exceptions() throws Exception {
        route("/api/v1/device/heartbeat", ex -> {
            ex.getResponseHeaders().set("Retry-After", "12");
            json(ex, 429, Json.obj("detail", "slow down", "code", "rate_limited"));
        });
        route("/api/v1/device/inventory", ex -> json(ex, 400, Json.obj("detail", "bad", "code", "invalid",
                "fields", Json.obj("apps", Arrays.asList("too many")))));
        route("/api/v1/device/commands", ex -> json(ex, 401, Json.obj("detail", "who?", "code", "token_invalid")));
        try {
            api().heartbeat(new JSONObject());
            fail();
        } catch (ApiException e) {
            assertEquals(429, e.status);
            assertEquals("rate_limited", e.code);
            assertEquals("slow down", e.detail);
            assertEquals(12, e.retryAfterS);
            assertTrue(e.isRetryable());
        }
        try {
            api().putInventory(new org.json.JSONArray());
            fail();
        } catch (ApiException e) {
            assertEquals(400, e.status);
            assertEquals("invalid", e.code);
            assertEquals("too many", e.fields.optJSONArray("apps").optString(0));
            assertFalse(e.isRetryable());
            assertEquals(-1, e.retryAfterS);
        }
        try {
            api().pullCommands(10);
            fail();
        } catch (ApiException e) {
            assertTrue(e.isTokenInvalid());
        }
    }

    @Test
    public void a_non_json_error_page_is_still_an_api_exception() throws Exception {
        route("/api/v1/device/heartbeat", ex -> {
            byte[] b = "<html>Bad gateway</html>".getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("Retry-After", "3");
            ex.sendResponseHeaders(503, b.length);
            ex.getResponseBody().write(b);
            ex.close();
        });
        try {
            api().heartbeat(new JSONObject());
            fail();
        } catch (ApiException e) {
            assertEquals(503, e.status);
            assertEquals("", e.code);
            assertThat(e.detail, startsWith("<html>"));
            assertEquals(3, e.retryAfterS);
            assertTrue(e.isRetryable());
        }
    }

    @Test
    public void pull_result_and_inventory_use_their_paths_and_methods() throws Exception {
        route("/api/v1/device/commands", ex -> {
            if (ex.getRequestMethod().equals("GET")) {
                json(ex, 200, Json.obj("commands", Arrays.asList(Json.obj("payload", "x", "kid", "k", "sig", "00")), "more", true));
            } else {
                json(ex, 200, Json.obj("status", "succeeded"));
            }
        });
        route("/api/v1/device/inventory", ex -> {
            ex.sendResponseHeaders(204, -1);
            ex.close();
        });
        HttpDeviceApi api = api();
        CommandsPage page = api.pullCommands(100);
        assertTrue(page.more);
        assertEquals("x", Json.parseObjectOrNull(page.commands.get(0)).optString("payload"));
        assertEquals("succeeded", api.postResult("7c9e6679-7425-40de-944b-e07fc1f90ae7", Json.obj("status", "succeeded")));
        api.putInventory(new org.json.JSONArray());
        assertThat(requestLines, contains("GET /api/v1/device/commands?limit=100",
                "POST /api/v1/device/commands/7c9e6679-7425-40de-944b-e07fc1f90ae7/result",
                "PUT /api/v1/device/inventory"));
    }

    @Test
    public void a_base_url_with_a_path_prefix_and_trailing_slash_is_kept() throws Exception {
        route("/mdm/api/v1/device/commands", ex -> json(ex, 200, Json.obj("commands", new org.json.JSONArray(), "more", false)));
        HttpDeviceApi api = new HttpDeviceApi(base() + "/mdm/", 2_000, 3_000, "t");
        api.setDeviceToken("x");
        assertFalse(api.pullCommands(5).more);
    }

    @Test
    public void an_unreachable_server_is_an_io_exception() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        try {
            new HttpDeviceApi("http://127.0.0.1:" + port, 1_000, 1_000, "t").heartbeat(new JSONObject());
            fail();
        } catch (IOException expected) {
            // the agent backs off on these
        }
    }

    // ---- APK download -----------------------------------------------------------------------

    private static byte[] apkBytes() {
        byte[] b = new byte[100_000];
        new Random(11).nextBytes(b);
        return b;
    }

    /** Serves bytes with ETag and checksum; Range honoured when If-Range matches; cutAt > 0 breaks the first answer. */
    private void serveApk(byte[] bytes, String etag, int[] cutAt) {
        route("/api/v1/device/apks/a1/download", ex -> {
            ex.getResponseHeaders().set("ETag", etag);
            ex.getResponseHeaders().set("X-Checksum-SHA256", Sha256.hex(bytes));
            String range = ex.getRequestHeaders().getFirst("Range");
            String ifRange = ex.getRequestHeaders().getFirst("If-Range");
            int start = 0;
            if (range != null && (ifRange == null || ifRange.equals(etag))) {
                start = Integer.parseInt(range.substring("bytes=".length(), range.length() - 1));
                ex.getResponseHeaders().set("Content-Range", "bytes " + start + "-" + (bytes.length - 1) + "/" + bytes.length);
                ex.sendResponseHeaders(206, bytes.length - start);
            } else {
                ex.sendResponseHeaders(200, bytes.length);
            }
            OutputStream out = ex.getResponseBody();
            if (cutAt[0] > 0) {
                out.write(bytes, start, cutAt[0]);
                out.flush();
                cutAt[0] = 0;
                try {
                    out.close(); // fewer bytes than announced: the server drops the connection
                } catch (IOException expected) {
                    // "insufficient bytes written"
                }
                return;
            }
            out.write(bytes, start, bytes.length - start);
            out.close();
        });
    }

    @Test
    public void a_cut_download_resumes_with_range_and_if_range() throws Exception {
        byte[] bytes = apkBytes();
        serveApk(bytes, "\"v1\"", new int[] {40_000});
        File dest = new File(tmp.getRoot(), "a1.apk");
        HttpDeviceApi api = api();
        try {
            api.downloadApk("a1", dest, Sha256.hex(bytes), bytes.length);
            fail("the first answer was cut");
        } catch (IOException expected) {
            // resumed below
        }
        assertFalse(dest.exists());
        assertEquals(40_000, new File(dest.getPath() + ".part").length());
        File got = api.downloadApk("a1", dest, Sha256.hex(bytes), bytes.length);
        assertArrayEquals(bytes, Files.readAllBytes(got.toPath()));
        assertEquals("bytes=40000-", requestHeaders.get(1).getFirst("Range"));
        assertEquals("\"v1\"", requestHeaders.get(1).getFirst("If-Range"));
        assertEquals("Device tok-1", requestHeaders.get(1).getFirst("Authorization"));
        assertFalse(new File(dest.getPath() + ".part").exists());
    }

    @Test
    public void a_changed_file_restarts_from_zero() throws Exception {
        byte[] bytes = apkBytes();
        File dest = new File(tmp.getRoot(), "a1.apk");
        Files.write(new File(dest.getPath() + ".part").toPath(), new byte[] {1, 2, 3});
        Files.write(new File(dest.getPath() + ".etag").toPath(), "\"old\"".getBytes(StandardCharsets.UTF_8));
        serveApk(bytes, "\"v2\"", new int[] {0});
        File got = api().downloadApk("a1", dest, Sha256.hex(bytes), bytes.length);
        assertArrayEquals(bytes, Files.readAllBytes(got.toPath()));
        assertEquals("bytes=3-", requestHeaders.get(0).getFirst("Range"));
    }

    @Test
    public void a_checksum_mismatch_discards_the_bytes() throws Exception {
        byte[] bytes = apkBytes();
        serveApk(bytes, "\"v1\"", new int[] {0});
        File dest = new File(tmp.getRoot(), "a1.apk");
        try {
            api().downloadApk("a1", dest, Sha256.hex("something else"), bytes.length);
            fail();
        } catch (ChecksumMismatchException expected) {
            assertFalse(dest.exists());
            assertFalse(new File(dest.getPath() + ".part").exists());
        }
    }

    @Test
    public void the_token_never_leaves_the_base_origin_on_a_redirect() throws Exception {
        byte[] bytes = apkBytes();
        List<Headers> seenByOther = new ArrayList<>();
        other = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        other.createContext("/blob", ex -> {
            seenByOther.add(ex.getRequestHeaders());
            ex.sendResponseHeaders(200, bytes.length);
            ex.getResponseBody().write(bytes);
            ex.close();
        });
        other.start();
        String elsewhere = "http://127.0.0.1:" + other.getAddress().getPort() + "/blob";
        route("/api/v1/device/apks/a1/download", ex -> {
            ex.getResponseHeaders().set("Location", elsewhere);
            ex.sendResponseHeaders(302, -1);
            ex.close();
        });
        File got = api().downloadApk("a1", new File(tmp.getRoot(), "x.apk"), Sha256.hex(bytes), bytes.length);
        assertArrayEquals(bytes, Files.readAllBytes(got.toPath()));
        assertEquals("Device tok-1", requestHeaders.get(0).getFirst("Authorization"));
        assertNull(seenByOther.get(0).getFirst("Authorization"));
    }

    @Test
    public void download_errors_are_api_exceptions() throws Exception {
        route("/api/v1/device/apks/a1/download", ex -> json(ex, 404, Json.obj("detail", "gone", "code", "not_found")));
        try {
            api().downloadApk("a1", new File(tmp.getRoot(), "x.apk"), null, 0);
            fail();
        } catch (ApiException e) {
            assertEquals("not_found", e.code);
        }
    }
}
