package dev.mdm.agent.core.envelope;

/** What the device rules 1-2 of PROTOCOL.md make of one envelope. */
public final class Verification {
    public enum Outcome {
        /** Signature good, own device, within its lifetime: queue it. */
        VALID,
        /** Signature good but the device must report {@code rejected} with {@link #reason}. */
        REJECTED,
        /** The kid is not in the keyring: count it, never trust its id. */
        UNKNOWN_KID,
        /** The signature does not verify (wrong bytes, not hex, wrong length): count it. */
        BAD_SIGNATURE,
        /** Not an envelope at all, or a verified payload we cannot parse: count it too. */
        MALFORMED
    }

    public static final String WRONG_DEVICE = "wrong_device";
    public static final String EXPIRED = "expired";

    public final Outcome outcome;
    public final Command command;
    public final String reason;
    public final String kid;

    private Verification(Outcome outcome, Command command, String reason, String kid) {
        this.outcome = outcome;
        this.command = command;
        this.reason = reason;
        this.kid = kid;
    }

    static Verification valid(Command c, String kid) {
        return new Verification(Outcome.VALID, c, null, kid);
    }

    static Verification rejected(Command c, String reason, String kid) {
        return new Verification(Outcome.REJECTED, c, reason, kid);
    }

    static Verification bad(Outcome outcome, String kid) {
        return new Verification(outcome, null, null, kid);
    }

    /** True for the outcomes counted in bad_envelopes and never reported against their id. */
    public boolean isBad() {
        return outcome == Outcome.UNKNOWN_KID || outcome == Outcome.BAD_SIGNATURE || outcome == Outcome.MALFORMED;
    }

    /** The wire name used in events: valid, rejected, unknown_kid, bad_signature, malformed. */
    public String name() {
        return outcome.name().toLowerCase(java.util.Locale.ROOT);
    }
}
