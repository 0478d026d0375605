package dev.mdm.agent.core.net;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Locale;

import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

import dev.mdm.agent.core.util.Json;
import dev.mdm.agent.core.util.Sha256;

/** DeviceApi over HttpURLConnection: the one class of the core that touches the network. */
public final class HttpDeviceApi implements DeviceApi {
    private static final int MAX_JSON_BYTES = 16 * 1024 * 1024;
    private static final int MAX_REDIRECTS = 5;

    private final URL base;
    private final String basePath;
    private final int connectTimeoutMs;
    private final int readTimeoutMs;
    private final String userAgent;
    private volatile String token;

    public HttpDeviceApi(String baseUrl, int connectTimeoutMs, int readTimeoutMs, String userAgent) {
        try {
            this.base = new URL(baseUrl);
        } catch (MalformedURLException e) {
            throw new IllegalArgumentException("bad server URL: " + baseUrl, e);
        }
        String scheme = base.getProtocol().toLowerCase(Locale.ROOT);
        if (!scheme.equals("https") && !scheme.equals("http")) {
            throw new IllegalArgumentException("server URL must be http(s): " + baseUrl);
        }
        String path = base.getPath();
        while (path.endsWith("/")) {
            path = path.substring(0, path.length() - 1);
        }
        this.basePath = path;
        this.connectTimeoutMs = connectTimeoutMs;
        this.readTimeoutMs = readTimeoutMs;
        this.userAgent = userAgent;
    }

    public HttpDeviceApi(String baseUrl) {
        this(baseUrl, 15_000, 30_000, "mdm-agent-core");
    }

    @Override
    public void setDeviceToken(String token) {
        this.token = token;
    }

    @Override
    public EnrollAnswer enroll(String enrollKey, JSONObject body, String currentToken) throws IOException, ApiException {
        HttpURLConnection c = open(url("/api/v1/enroll"), "POST", false);
        c.setRequestProperty("X-Admin-Key", enrollKey);
        if (currentToken != null && sameOrigin(c.getURL())) {
            c.setRequestProperty("Authorization", "Device " + currentToken);
        }
        int status = send(c, body);
        return EnrollAnswer.parse(status, jsonAnswer(c, status));
    }

    @Override
    public HeartbeatAnswer heartbeat(JSONObject body) throws IOException, ApiException {
        HttpURLConnection c = open(url("/api/v1/device/heartbeat"), "POST", true);
        return HeartbeatAnswer.parse(jsonAnswer(c, send(c, body)));
    }

    @Override
    public void putInventory(JSONArray apps) throws IOException, ApiException {
        HttpURLConnection c = open(url("/api/v1/device/inventory"), "PUT", true);
        int status = send(c, Json.obj("apps", apps));
        byte[] answer = readBody(c, status); // 204: nothing, but drains the connection for keep-alive
        if (status / 100 != 2) {
            throw apiError(c, status, answer);
        }
    }

    @Override
    public CommandsPage pullCommands(int limit) throws IOException, ApiException {
        HttpURLConnection c = open(url("/api/v1/device/commands?limit=" + limit), "GET", true);
        JSONObject o = jsonAnswer(c, send(c, null));
        return new CommandsPage(HeartbeatAnswer.envelopes(o.optJSONArray("commands")), Json.bool(o, "more", false));
    }

    @Override
    public String postResult(String commandId, JSONObject result) throws IOException, ApiException {
        HttpURLConnection c = open(url("/api/v1/device/commands/" + segment(commandId) + "/result"), "POST", true);
        return Json.string(jsonAnswer(c, send(c, result)), "status");
    }

    @Override
    public String fetchPolicy() throws IOException, ApiException {
        HttpURLConnection c = open(url("/api/v1/device/policy"), "GET", true);
        int status = send(c, null);
        byte[] body = readBody(c, status);
        if (status / 100 != 2) {
            throw apiError(c, status, body);
        }
        return new String(body, StandardCharsets.UTF_8);
    }

    @Override
    public void putPolicyStatus(JSONObject status) throws IOException, ApiException {
        HttpURLConnection c = open(url("/api/v1/device/policy/status"), "PUT", true);
        int code = send(c, status);
        byte[] answer = readBody(c, code); // 204
        if (code / 100 != 2) {
            throw apiError(c, code, answer);
        }
    }

    @Override
    public File downloadApk(String apkId, File dest, String sha256, long size) throws IOException, ApiException {
        File part = new File(dest.getPath() + ".part");
        File etagFile = new File(dest.getPath() + ".etag");
        long have = part.isFile() ? part.length() : 0;
        if (size > 0 && have > size) {
            have = 0;
        }
        String etag = have > 0 && etagFile.isFile() ? new String(Files.readAllBytes(etagFile.toPath()), StandardCharsets.UTF_8) : null;
        URL target = url("/api/v1/device/apks/" + segment(apkId) + "/download");
        String headerSha = null;
        boolean restarted = false;
        for (int redirects = 0; ; ) {
            HttpURLConnection c = open(target, "GET", true);
            c.setRequestProperty("Accept", "application/vnd.android.package-archive, application/json;q=0.9");
            c.setRequestProperty("Accept-Encoding", "identity");
            if (have > 0) {
                c.setRequestProperty("Range", "bytes=" + have + "-");
                if (etag != null && !etag.isEmpty()) {
                    c.setRequestProperty("If-Range", etag);
                }
            }
            int status = c.getResponseCode();
            String location = c.getHeaderField("Location");
            if (status / 100 == 3 && location != null && redirects < MAX_REDIRECTS) {
                readBody(c, status);
                // A redirect may leave our origin (storage, CDN): open() then sends no token.
                target = new URL(target, location);
                redirects++;
                continue;
            }
            if (status == 416 && have > 0 && !restarted) {
                readBody(c, status);
                if (size > 0 && have == size) {
                    break; // already complete; the checksum below decides
                }
                have = 0;
                restarted = true;
                continue;
            }
            if (status != 200 && status != 206) {
                throw apiError(c, status);
            }
            boolean append = status == 206;
            if (append && !contentRangeStartsAt(c.getHeaderField("Content-Range"), have)) {
                c.disconnect();
                have = 0;
                if (restarted) {
                    throw new IOException("server answered an unusable Content-Range");
                }
                restarted = true;
                continue;
            }
            headerSha = c.getHeaderField("X-Checksum-SHA256");
            String newEtag = c.getHeaderField("ETag");
            if (newEtag != null) {
                Files.write(etagFile.toPath(), newEtag.getBytes(StandardCharsets.UTF_8));
            }
            long expected = c.getContentLengthLong();
            long written = 0;
            try (InputStream in = c.getInputStream(); OutputStream out = new FileOutputStream(part, append)) {
                byte[] buf = new byte[64 * 1024];
                for (int n; (n = in.read(buf)) > 0; ) {
                    out.write(buf, 0, n);
                    written += n;
                }
            }
            if (expected >= 0 && written < expected) {
                throw new IOException("download cut after " + written + " of " + expected + " bytes");
            }
            break;
        }
        String actual = Sha256.hex(part);
        String problem = null;
        if (sha256 != null && !sha256.equalsIgnoreCase(actual)) {
            problem = "sha256 " + actual + " does not match the command's " + sha256;
        } else if (headerSha != null && !headerSha.trim().equalsIgnoreCase(actual)) {
            problem = "sha256 " + actual + " does not match X-Checksum-SHA256 " + headerSha;
        } else if (size > 0 && part.length() != size) {
            problem = "size " + part.length() + " is not the expected " + size;
        }
        if (problem != null) {
            Files.deleteIfExists(part.toPath());
            Files.deleteIfExists(etagFile.toPath());
            throw new ChecksumMismatchException(problem);
        }
        Files.move(part.toPath(), dest.toPath(), StandardCopyOption.REPLACE_EXISTING);
        Files.deleteIfExists(etagFile.toPath());
        return dest;
    }

    private static boolean contentRangeStartsAt(String contentRange, long start) {
        // "bytes 1000-1999/2000"
        if (contentRange == null || !contentRange.trim().toLowerCase(Locale.ROOT).startsWith("bytes ")) {
            return false;
        }
        String spec = contentRange.trim().substring(6).trim();
        int dash = spec.indexOf('-');
        try {
            return dash > 0 && Long.parseLong(spec.substring(0, dash).trim()) == start;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    URL url(String path) {
        try {
            return new URL(base.getProtocol(), base.getHost(), base.getPort(), basePath + path);
        } catch (MalformedURLException e) {
            throw new IllegalArgumentException(e);
        }
    }

    private static String segment(String s) {
        try {
            return URLEncoder.encode(s, "UTF-8").replace("+", "%20");
        } catch (java.io.UnsupportedEncodingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Same scheme, host and port as the base URL: the only origin that may see the device token. */
    boolean sameOrigin(URL url) {
        return url.getProtocol().equalsIgnoreCase(base.getProtocol())
                && url.getHost().equalsIgnoreCase(base.getHost())
                && effectivePort(url) == effectivePort(base);
    }

    private static int effectivePort(URL u) {
        return u.getPort() == -1 ? u.getDefaultPort() : u.getPort();
    }

    private HttpURLConnection open(URL url, String method, boolean withToken) throws IOException {
        HttpURLConnection c = (HttpURLConnection) url.openConnection();
        c.setRequestMethod(method);
        c.setConnectTimeout(connectTimeoutMs);
        c.setReadTimeout(readTimeoutMs);
        c.setUseCaches(false);
        // Redirects are followed by hand (downloads only) so the token never leaves the origin.
        c.setInstanceFollowRedirects(false);
        c.setRequestProperty("Accept", "application/json");
        c.setRequestProperty("User-Agent", userAgent);
        String t = token;
        if (withToken && t != null && sameOrigin(url)) {
            c.setRequestProperty("Authorization", "Device " + t);
        }
        return c;
    }

    private static int send(HttpURLConnection c, JSONObject body) throws IOException {
        if (body != null) {
            byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
            c.setDoOutput(true);
            c.setRequestProperty("Content-Type", "application/json; charset=utf-8");
            // Not setFixedLengthStreamingMode: in streaming mode the JDK drops the body of a 401,
            // and the code in it (token_invalid) is what decides a re-enrollment.
            try (OutputStream out = c.getOutputStream()) {
                out.write(bytes);
            }
        }
        return c.getResponseCode();
    }

    private static JSONObject jsonAnswer(HttpURLConnection c, int status) throws IOException, ApiException {
        byte[] body = readBody(c, status);
        if (status / 100 != 2) {
            throw apiError(c, status, body);
        }
        try {
            return Json.parseObject(new String(body, StandardCharsets.UTF_8));
        } catch (JSONException e) {
            throw new IOException("answer " + status + " is not a JSON object", e);
        }
    }

    private static byte[] readBody(HttpURLConnection c, int status) throws IOException {
        InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
        if (in == null) {
            return new byte[0];
        }
        try (InputStream stream = in) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[16 * 1024];
            for (int n; (n = stream.read(buf)) > 0; ) {
                out.write(buf, 0, n);
                if (out.size() > MAX_JSON_BYTES) {
                    throw new IOException("answer larger than " + MAX_JSON_BYTES + " bytes");
                }
            }
            return out.toByteArray();
        }
    }

    private static ApiException apiError(HttpURLConnection c, int status) throws IOException {
        return apiError(c, status, readBody(c, status));
    }

    private static ApiException apiError(HttpURLConnection c, int status, byte[] body) {
        String text = new String(body, StandardCharsets.UTF_8);
        String code = "";
        String detail = "";
        JSONObject fields = null;
        String reenrollRequest = null;
        JSONObject o = Json.parseObjectOrNull(text);
        if (o != null) {
            code = nonNull(Json.string(o, "code"));
            detail = nonNull(Json.string(o, "detail"));
            fields = o.optJSONObject("fields");
            reenrollRequest = Json.string(o, "reenroll_request");
        } else {
            detail = text.length() > 200 ? text.substring(0, 200) : text;
        }
        return new ApiException(status, code, detail, parseRetryAfter(c.getHeaderField("Retry-After"), System.currentTimeMillis()),
                fields, reenrollRequest);
    }

    private static String nonNull(String s) {
        return s == null ? "" : s;
    }

    /** Retry-After as delta-seconds or an HTTP date; -1 when absent or unreadable. */
    static long parseRetryAfter(String value, long nowMs) {
        if (value == null || value.trim().isEmpty()) {
            return -1;
        }
        String v = value.trim();
        try {
            return Math.max(0, Long.parseLong(v));
        } catch (NumberFormatException ignored) {
            // fall through to the date form
        }
        try {
            long at = ZonedDateTime.parse(v, DateTimeFormatter.RFC_1123_DATE_TIME).toInstant().toEpochMilli();
            return Math.max(0, (at - nowMs + 999) / 1000);
        } catch (DateTimeParseException e) {
            return -1;
        }
    }
}
