package dev.mdm.agent.core.policy;

import java.util.List;

/** The system_update item, checked: type, window (minutes after local midnight) and freeze periods. */
public final class SystemUpdateSpec {
    public static final String AUTOMATIC = "automatic";
    public static final String WINDOWED = "windowed";
    public static final String POSTPONE = "postpone";

    public final String type;
    public final int windowStartMin;
    public final int windowEndMin;
    public final List<FreezePeriod> freezePeriods;

    public SystemUpdateSpec(String type, int windowStartMin, int windowEndMin, List<FreezePeriod> freezePeriods) {
        this.type = type;
        this.windowStartMin = windowStartMin;
        this.windowEndMin = windowEndMin;
        this.freezePeriods = freezePeriods;
    }

    /** A yearly period, "MM-DD" to "MM-DD" inclusive; it may wrap over New Year. */
    public static final class FreezePeriod {
        public final int startMonth;
        public final int startDay;
        public final int endMonth;
        public final int endDay;

        public FreezePeriod(int startMonth, int startDay, int endMonth, int endDay) {
            this.startMonth = startMonth;
            this.startDay = startDay;
            this.endMonth = endMonth;
            this.endDay = endDay;
        }

        @Override
        public String toString() {
            return String.format(java.util.Locale.ROOT, "%02d-%02d..%02d-%02d", startMonth, startDay, endMonth, endDay);
        }
    }
}
