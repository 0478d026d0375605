package dev.mdm.agent.core.policy;

/** The kiosk item, checked. */
public final class KioskSpec {
    public final String packageName;
    /** A class name (".Main" or fully qualified), or null: the package's launcher activity. */
    public final String activity;
    public final boolean lockTask;
    public final boolean relaunch;
    /** Show the status bar in lock task mode (LOCK_TASK_FEATURE_SYSTEM_INFO and NOTIFICATIONS). */
    public final boolean statusBar;

    public KioskSpec(String packageName, String activity, boolean lockTask, boolean relaunch, boolean statusBar) {
        this.packageName = packageName;
        this.activity = activity;
        this.lockTask = lockTask;
        this.relaunch = relaunch;
        this.statusBar = statusBar;
    }
}
