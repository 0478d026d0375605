package dev.mdm.agent.core.net;

import java.util.List;

/** GET /api/v1/device/commands: envelope texts, lowest seq first, and whether more wait. */
public final class CommandsPage {
    public final List<String> commands;
    public final boolean more;

    public CommandsPage(List<String> commands, boolean more) {
        this.commands = commands;
        this.more = more;
    }
}
