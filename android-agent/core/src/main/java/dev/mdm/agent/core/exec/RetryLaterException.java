package dev.mdm.agent.core.exec;

/** A command could not finish for a transient reason (network, 429/503): keep it and retry later. */
public final class RetryLaterException extends Exception {
    private static final long serialVersionUID = 1L;
    public final long retryAfterS;

    public RetryLaterException(String message, Throwable cause, long retryAfterS) {
        super(message, cause);
        this.retryAfterS = retryAfterS;
    }
}
