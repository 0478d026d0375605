package dev.mdm.agent.core.support;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import org.json.JSONArray;
import org.json.JSONObject;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import dev.mdm.agent.core.envelope.CommandKey;
import dev.mdm.agent.core.envelope.EnvelopeVerifier;
import dev.mdm.agent.core.telemetry.AppInfo;
import dev.mdm.agent.core.telemetry.AppsHash;
import dev.mdm.agent.core.util.Json;

/**
 * A small in-test MDM server speaking the device side of PROTOCOL.md over real HTTP on loopback,
 * with knobs to fail, shed load, go down, rotate keys and cancel. Its clock is {@link #now}.
 */
public final class FakeMdm implements AutoCloseable {
    public static final String ENROLL_KEY = "enroll-key-1";

    public static final class Device {
        public String id;
        public String hardwareId;
        public String token;
        /** The first key signs. */
        public List<CommandKey> keys = new ArrayList<>();
        public long nextSeq = 1;
        /** v1.1: the device's policy (0 and no items: none). */
        public long policyVersion;
        public JSONObject policyItems = new JSONObject();
    }

    public static final class Cmd {
        public String id;
        public Device device;
        public long seq;
        public String type;
        public JSONObject params;
        public long issuedAt;
        public long expiresAt;
        public String status = "queued";
        public String reason;
    }

    /** A re-enrollment request (PROTOCOL.md v1.1): pending, approved, denied or used. */
    public static final class ReenrollRequest {
        public String id;
        public Device device;
        public String state = "pending";
    }

    private static final class Failure {
        final int status;
        final String code;
        final long retryAfterS;

        Failure(int status, String code, long retryAfterS) {
            this.status = status;
            this.code = code;
            this.retryAfterS = retryAfterS;
        }
    }

    private final HttpServer server;
    private final SecureRandom random = new SecureRandom();

    public volatile long now = 1_764_086_400L;
    public volatile long intervalS = 30;
    public volatile int heartbeatCommandLimit = 25;
    /** While true, every request is answered by closing the connection (a network error). */
    public volatile boolean down;
    public volatile boolean forceTokenInvalid;
    public String storedAppsHash;

    public final Map<String, Device> devicesByHardware = new LinkedHashMap<>();
    public final List<Cmd> commands = new ArrayList<>();
    public final List<String> cancelledToSend = new ArrayList<>();
    public final List<JSONObject> heartbeats = new ArrayList<>();
    public final List<JSONObject> results = new ArrayList<>();
    public final List<JSONObject> inventories = new ArrayList<>();
    public final List<JSONObject> enrollments = new ArrayList<>();
    public final Map<String, ReenrollRequest> reenrollRequests = new LinkedHashMap<>();
    /** The fleet setting reenroll_policy = allowed (v1.1 rule 3); off: token or approval. */
    public volatile boolean reenrollAllowed;
    public final Map<String, byte[]> apks = new LinkedHashMap<>();
    public int pulls;
    /** Runs right after a device enrolls (e.g. to queue commands for it). */
    public volatile java.util.function.Consumer<Device> afterEnroll;
    /** The next n downloads answer 503 busy with Retry-After: 2. */
    public volatile int failDownloads;
    /** The next download sends this many bytes of its body and then closes the connection (0: off). */
    public volatile int cutDownloadAfter;
    /** The Range header of each download ("" when absent), in order. */
    public final List<String> downloadRanges = Collections.synchronizedList(new ArrayList<>());
    private final List<Failure> failures = new ArrayList<>();
    /** Off: a v1 server (no policy_version in answers, 404 on the policy endpoints). */
    public volatile boolean policyChannel = true;
    /** The next n policy answers carry a signature that does not verify. */
    public volatile int tamperPolicies;
    /** Non-null: the policy text names this device id instead of the caller's. */
    public volatile String policyDeviceIdOverride;
    public final List<JSONObject> policyStatuses = new ArrayList<>();
    public int policyFetches;
    /** The next n status reports answer 503 busy. */
    public volatile int failPolicyStatus;

    public FakeMdm() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", this::handle);
        server.start();
    }

    public String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    @Override
    public void close() {
        server.stop(0);
    }

    /** The next n requests answer status with {"code": code} and Retry-After (if >= 0). */
    public synchronized void failNext(int n, int status, String code, long retryAfterS) {
        for (int i = 0; i < n; i++) {
            failures.add(new Failure(status, code, retryAfterS));
        }
    }

    public synchronized Device device() {
        return devicesByHardware.values().iterator().next();
    }

    /** A device the server knows already (e.g. enrolled before a factory reset), with a token the agent lacks. */
    public synchronized Device known(String hardwareId) {
        Device d = new Device();
        d.id = UUID.randomUUID().toString();
        d.hardwareId = hardwareId;
        d.token = "tok-" + UUID.randomUUID();
        d.keys = new ArrayList<>(Collections.singletonList(newKey("k1")));
        devicesByHardware.put(hardwareId, d);
        return d;
    }

    /** What an admin does in the console: approve or deny a request. */
    public synchronized void decide(String requestId, String state) {
        reenrollRequests.get(requestId).state = state;
    }

    public synchronized Cmd queue(String type, JSONObject params) {
        return queue(device(), type, params, now, now + 3600);
    }

    public synchronized Cmd queue(Device d, String type, JSONObject params, long issuedAt, long expiresAt) {
        Cmd c = new Cmd();
        c.id = UUID.randomUUID().toString();
        c.device = d;
        c.seq = d.nextSeq++;
        c.type = type;
        c.params = params == null ? new JSONObject() : params;
        c.issuedAt = issuedAt;
        c.expiresAt = expiresAt;
        commands.add(c);
        return c;
    }

    public synchronized void cancel(Cmd c) {
        c.status = "cancelled";
        cancelledToSend.add(c.id);
    }

    public synchronized String payload(Cmd c) {
        JSONObject p = Json.obj("id", c.id, "device_id", c.device.id, "seq", c.seq, "type", c.type, "params", c.params,
                "issued_at", c.issuedAt, "expires_at", c.expiresAt);
        return p.toString();
    }

    /** The envelope as the server serves it: signed now with the device's current key. */
    public synchronized JSONObject envelope(Cmd c) {
        CommandKey k = c.device.keys.get(0);
        return EnvelopeVerifier.sign(payload(c), k.kid, k.key());
    }

    public synchronized Cmd find(String id) {
        for (Cmd c : commands) {
            if (c.id.equals(id)) {
                return c;
            }
        }
        return null;
    }

    public synchronized List<JSONObject> resultsFor(String id) {
        List<JSONObject> out = new ArrayList<>();
        for (JSONObject r : results) {
            if (id.equals(r.optString("id"))) {
                out.add(r);
            }
        }
        return out;
    }

    public CommandKey newKey(String kid) {
        byte[] key = new byte[32];
        random.nextBytes(key);
        return new CommandKey(kid, key);
    }

    // ---- HTTP -------------------------------------------------------------------------------

    private void handle(HttpExchange ex) throws IOException {
        try {
            if (down) {
                ex.close(); // no status line: the client sees a broken connection
                return;
            }
            Failure f;
            synchronized (this) {
                f = failures.isEmpty() ? null : failures.remove(0);
            }
            if (f != null) {
                if (f.retryAfterS >= 0) {
                    ex.getResponseHeaders().set("Retry-After", String.valueOf(f.retryAfterS));
                }
                send(ex, f.status, Json.obj("detail", "injected failure", "code", f.code));
                return;
            }
            String path = ex.getRequestURI().getPath();
            while (path.endsWith("/")) {
                path = path.substring(0, path.length() - 1);
            }
            String method = ex.getRequestMethod();
            if (path.equals("/api/v1/enroll") && method.equals("POST")) {
                enroll(ex);
                return;
            }
            Device d = authenticate(ex);
            if (d == null) {
                send(ex, 401, Json.obj("detail", "bad token", "code", "token_invalid"));
                return;
            }
            if (path.equals("/api/v1/device/heartbeat") && method.equals("POST")) {
                heartbeat(ex, d);
            } else if (path.equals("/api/v1/device/inventory") && method.equals("PUT")) {
                inventory(ex);
            } else if (path.equals("/api/v1/device/commands") && method.equals("GET")) {
                pull(ex, d);
            } else if (path.startsWith("/api/v1/device/commands/") && path.endsWith("/result") && method.equals("POST")) {
                result(ex, d, path.substring("/api/v1/device/commands/".length(), path.length() - "/result".length()));
            } else if (path.equals("/api/v1/device/policy") && method.equals("GET") && policyChannel) {
                policy(ex, d);
            } else if (path.equals("/api/v1/device/policy/status") && method.equals("PUT") && policyChannel) {
                policyStatus(ex);
            } else if (path.startsWith("/api/v1/device/apks/") && path.endsWith("/download") && method.equals("GET")) {
                download(ex, path.substring("/api/v1/device/apks/".length(), path.length() - "/download".length()));
            } else {
                send(ex, 404, Json.obj("detail", "no such endpoint", "code", "not_found"));
            }
        } catch (RuntimeException e) {
            e.printStackTrace();
            send(ex, 500, Json.obj("detail", e.toString(), "code", "server_error"));
        }
    }

    private synchronized Device authenticate(HttpExchange ex) {
        String auth = ex.getRequestHeaders().getFirst("Authorization");
        if (forceTokenInvalid || auth == null || !auth.startsWith("Device ")) {
            return null;
        }
        String token = auth.substring("Device ".length());
        for (Device d : devicesByHardware.values()) {
            if (token.equals(d.token)) {
                return d;
            }
        }
        return null;
    }

    private void enroll(HttpExchange ex) throws IOException {
        JSONObject body = readJson(ex);
        if (!ENROLL_KEY.equals(ex.getRequestHeaders().getFirst("X-Admin-Key"))) {
            send(ex, 401, Json.obj("detail", "unknown enrollment key", "code", "key_invalid"));
            return;
        }
        String hw = Json.string(body, "hardware_id");
        if (hw == null || hw.isEmpty()) {
            send(ex, 400, Json.obj("detail", "invalid", "code", "invalid", "fields", Json.obj("hardware_id", Collections.singletonList("required"))));
            return;
        }
        int status;
        Device d;
        synchronized (this) {
            String auth = ex.getRequestHeaders().getFirst("Authorization");
            Json.put(body, "_authorization", auth);
            enrollments.add(body);
            d = devicesByHardware.get(hw);
            status = d == null ? 201 : 200;
            String refusedWith = d == null || reenrollAllowed || ("Device " + d.token).equals(auth) ? null
                    : reenrollRefusal(d, Json.string(body, "reenroll_request"));
            if (refusedWith != null) {
                send(ex, 409, Json.obj("detail", "needs an admin's approval", "code", "reenroll_needs_approval",
                        "reenroll_request", refusedWith));
                return;
            }
            if (d == null) {
                d = new Device();
                d.id = UUID.randomUUID().toString();
                d.hardwareId = hw;
                devicesByHardware.put(hw, d);
            } else {
                for (Cmd c : commands) {
                    if (c.device == d && (c.status.equals("queued") || c.status.equals("sent"))) {
                        c.status = "cancelled";
                        c.reason = "reenrolled";
                    }
                }
            }
            d.token = "tok-" + UUID.randomUUID();
            d.keys = new ArrayList<>(Collections.singletonList(newKey("k" + (random.nextInt(900) + 100))));
            forceTokenInvalid = false;
        }
        JSONObject answer = Json.obj("device_id", d.id, "device_token", d.token, "heartbeat_interval_s", intervalS,
                "command_keys", keysJson(d), "server_time", now);
        if (afterEnroll != null) {
            afterEnroll.accept(d);
        }
        send(ex, status, answer);
    }

    /** v1.1 rule 2: null when the id is approved for this device (and now used), else the id to answer. */
    private String reenrollRefusal(Device d, String requestId) {
        ReenrollRequest r = requestId == null ? null : reenrollRequests.get(requestId);
        if (r != null && r.device == d && r.state.equals("approved")) {
            r.state = "used";
            return null;
        }
        if (r != null && r.device == d && r.state.equals("pending")) {
            return r.id;
        }
        ReenrollRequest fresh = new ReenrollRequest();
        fresh.id = UUID.randomUUID().toString();
        fresh.device = d;
        reenrollRequests.put(fresh.id, fresh);
        return fresh.id;
    }

    private static JSONArray keysJson(Device d) {
        JSONArray a = new JSONArray();
        for (CommandKey k : d.keys) {
            a.put(k.toJson());
        }
        return a;
    }

    private synchronized List<Cmd> pending(Device d) {
        List<Cmd> out = new ArrayList<>();
        for (Cmd c : commands) {
            if (c.device == d && (c.status.equals("queued") || c.status.equals("sent")) && c.expiresAt >= now) {
                out.add(c);
            }
        }
        out.sort((a, b) -> Long.compare(a.seq, b.seq));
        return out;
    }

    private void heartbeat(HttpExchange ex, Device d) throws IOException {
        JSONObject body = readJson(ex);
        JSONObject answer;
        synchronized (this) {
            heartbeats.add(body);
            List<String> kids = Json.strings(body, "kids");
            List<String> serverKids = new ArrayList<>();
            for (CommandKey k : d.keys) {
                serverKids.add(k.kid);
            }
            Collections.sort(serverKids);
            List<Cmd> pending = pending(d);
            JSONArray envelopes = new JSONArray();
            for (int i = 0; i < Math.min(heartbeatCommandLimit, pending.size()); i++) {
                pending.get(i).status = "sent";
                envelopes.put(envelope(pending.get(i)));
            }
            answer = Json.obj("server_time", now, "heartbeat_interval_s", intervalS, "commands", envelopes,
                    "more_commands", heartbeatCommandLimit > 0 && pending.size() > heartbeatCommandLimit, "cancelled", new ArrayList<>(cancelledToSend),
                    "inventory_requested", !Json.string(body, "apps_hash").equals(storedAppsHash),
                    "ignored_fields", new JSONArray());
            cancelledToSend.clear();
            if (policyChannel) {
                Json.put(answer, "policy_version", d.policyVersion);
            }
            if (kids == null || !kids.equals(serverKids)) {
                Json.put(answer, "command_keys", keysJson(d));
            }
        }
        send(ex, 200, answer);
    }

    /** What an admin's assignment does: a new, higher version for the device. */
    public synchronized void assignPolicy(Device d, long version, JSONObject items) {
        d.policyVersion = version;
        d.policyItems = items;
    }

    public synchronized String policyText(Device d) {
        String deviceId = policyDeviceIdOverride != null ? policyDeviceIdOverride : d.id;
        return Json.obj("device_id", deviceId, "version", d.policyVersion, "issued_at", now, "items", d.policyItems).toString();
    }

    public synchronized List<JSONObject> policyStatuses() {
        return new ArrayList<>(policyStatuses);
    }

    public synchronized JSONObject lastPolicyStatus() {
        return policyStatuses.isEmpty() ? null : policyStatuses.get(policyStatuses.size() - 1);
    }

    private void policy(HttpExchange ex, Device d) throws IOException {
        JSONObject answer;
        synchronized (this) {
            policyFetches++;
            CommandKey k = d.keys.get(0);
            answer = dev.mdm.agent.core.policy.PolicyVerifier.sign(policyText(d), k.kid, k.key());
            if (tamperPolicies > 0) {
                tamperPolicies--;
                String sig = Json.string(answer, "sig");
                Json.put(answer, "sig", (sig.charAt(0) == '0' ? "1" : "0") + sig.substring(1));
            }
        }
        send(ex, 200, answer);
    }

    private void policyStatus(HttpExchange ex) throws IOException {
        JSONObject body = readJson(ex);
        if (failPolicyStatus > 0) {
            failPolicyStatus--;
            ex.getResponseHeaders().set("Retry-After", "1");
            send(ex, 503, Json.obj("detail", "busy", "code", "busy"));
            return;
        }
        synchronized (this) {
            policyStatuses.add(body);
        }
        ex.sendResponseHeaders(204, -1);
        ex.close();
    }

    private void inventory(HttpExchange ex) throws IOException {
        JSONObject body = readJson(ex);
        List<AppInfo> apps = new ArrayList<>();
        for (JSONObject a : Json.objects(body.optJSONArray("apps"))) {
            apps.add(new AppInfo(a.optString("package"), a.optString("version_name"), a.optLong("version_code"),
                    a.optBoolean("system"), a.optBoolean("enabled")));
        }
        synchronized (this) {
            inventories.add(body);
            storedAppsHash = AppsHash.of(apps);
        }
        ex.sendResponseHeaders(204, -1);
        ex.close();
    }

    private void pull(HttpExchange ex, Device d) throws IOException {
        String query = ex.getRequestURI().getQuery();
        int limit = 25;
        if (query != null && query.startsWith("limit=")) {
            limit = Math.min(100, Integer.parseInt(query.substring(6)));
        }
        JSONObject answer;
        synchronized (this) {
            pulls++;
            List<Cmd> pending = pending(d);
            JSONArray envelopes = new JSONArray();
            for (int i = 0; i < Math.min(limit, pending.size()); i++) {
                pending.get(i).status = "sent";
                envelopes.put(envelope(pending.get(i)));
            }
            answer = Json.obj("commands", envelopes, "more", pending.size() > limit);
        }
        send(ex, 200, answer);
    }

    private static final List<String> ORDER = java.util.Arrays.asList("queued", "sent", "received", "running",
            "succeeded", "failed", "rejected", "expired", "cancelled");

    private void result(HttpExchange ex, Device d, String id) throws IOException {
        JSONObject body = readJson(ex);
        String status;
        synchronized (this) {
            Cmd c = find(id);
            if (c == null || c.device != d) {
                send(ex, 404, Json.obj("detail", "no such command", "code", "not_found"));
                return;
            }
            Json.put(body, "id", id);
            results.add(body);
            String s = Json.string(body, "status");
            boolean isFinal = ORDER.indexOf(c.status) >= 4;
            if (!isFinal && ORDER.indexOf(s) > ORDER.indexOf(c.status)) {
                c.status = s;
                c.reason = Json.string(body, "reason");
            }
            status = c.status;
        }
        send(ex, 200, Json.obj("status", status));
    }

    private void download(HttpExchange ex, String apkId) throws IOException {
        byte[] bytes;
        synchronized (this) {
            bytes = apks.get(apkId);
        }
        if (failDownloads > 0) {
            failDownloads--;
            ex.getResponseHeaders().set("Retry-After", "2");
            send(ex, 503, Json.obj("detail", "busy", "code", "busy"));
            return;
        }
        if (bytes == null) {
            send(ex, 404, Json.obj("detail", "no such apk", "code", "not_found"));
            return;
        }
        String etag = "\"" + apkId + "\"";
        ex.getResponseHeaders().set("ETag", etag);
        ex.getResponseHeaders().set("X-Checksum-SHA256", dev.mdm.agent.core.util.Sha256.hex(bytes));
        String range = ex.getRequestHeaders().getFirst("Range");
        String ifRange = ex.getRequestHeaders().getFirst("If-Range");
        downloadRanges.add(range == null ? "" : range);
        int start = 0;
        int status = 200;
        if (range != null && range.startsWith("bytes=") && range.endsWith("-") && (ifRange == null || ifRange.equals(etag))) {
            start = Integer.parseInt(range.substring(6, range.length() - 1));
            status = 206;
            ex.getResponseHeaders().set("Content-Range", "bytes " + start + "-" + (bytes.length - 1) + "/" + bytes.length);
        }
        int cut = cutDownloadAfter;
        cutDownloadAfter = 0;
        ex.sendResponseHeaders(status, bytes.length - start);
        OutputStream out = ex.getResponseBody();
        if (cut > 0) {
            out.write(bytes, start, Math.min(cut, bytes.length - start));
            out.flush();
            try {
                out.close(); // short of Content-Length: the server drops the connection
            } catch (IOException expected) {
                // "insufficient bytes written to stream"
            }
            return;
        }
        try (out) {
            out.write(bytes, start, bytes.length - start);
        }
    }

    static JSONObject readJson(HttpExchange ex) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (InputStream in = ex.getRequestBody()) {
            in.transferTo(buf);
        }
        JSONObject o = Json.parseObjectOrNull(new String(buf.toByteArray(), StandardCharsets.UTF_8));
        return o == null ? new JSONObject() : o;
    }

    static void send(HttpExchange ex, int status, JSONObject body) throws IOException {
        byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }
}
