package dev.mdm.agent.core.net;

import java.io.IOException;

/** The downloaded bytes do not match the expected sha256 or size; the partial file is discarded. */
public final class ChecksumMismatchException extends IOException {
    private static final long serialVersionUID = 1L;

    public ChecksumMismatchException(String message) {
        super(message);
    }
}
