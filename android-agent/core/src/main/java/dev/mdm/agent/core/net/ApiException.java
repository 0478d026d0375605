package dev.mdm.agent.core.net;

import org.json.JSONObject;

/**
 * A non-2xx answer, with the body's {"detail", "code"} and the Retry-After of a 429/503.
 * Network failures are IOExceptions instead: they never reached a server that could answer.
 */
public final class ApiException extends Exception {
    private static final long serialVersionUID = 1L;

    public final int status;
    /** The body's machine code ({@code token_invalid}, {@code rate_limited}, ...), or "" if none. */
    public final String code;
    public final String detail;
    /** Seconds from Retry-After, or -1 if the answer had none. */
    public final long retryAfterS;
    /** The validation error's "fields" object, or null. */
    public final JSONObject fields;
    /** A 409 reenroll_needs_approval's "reenroll_request" id (PROTOCOL.md v1.1), or null. */
    public final String reenrollRequest;

    public ApiException(int status, String code, String detail, long retryAfterS, JSONObject fields) {
        this(status, code, detail, retryAfterS, fields, null);
    }

    public ApiException(int status, String code, String detail, long retryAfterS, JSONObject fields,
            String reenrollRequest) {
        super("HTTP " + status + (code.isEmpty() ? "" : " " + code) + (detail.isEmpty() ? "" : ": " + detail));
        this.status = status;
        this.code = code;
        this.detail = detail;
        this.retryAfterS = retryAfterS;
        this.fields = fields;
        this.reenrollRequest = reenrollRequest;
    }

    /** Worth retrying later with backoff: rate limiting, load shedding, or a server fault. */
    public boolean isRetryable() {
        return status == 429 || status == 503 || status == 408 || status >= 500;
    }

    public boolean isTokenInvalid() {
        return status == 401 && "token_invalid".equals(code);
    }

    /** A re-enrollment waiting for an admin: repeat it with {@link #reenrollRequest} (PROTOCOL.md v1.1). */
    public boolean isReenrollNeedsApproval() {
        return status == 409 && "reenroll_needs_approval".equals(code);
    }
}
