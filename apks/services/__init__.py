"""State changes of the APK app (STYLE.md: the only place that changes state), one module per
entity: releases.py (create, mark as the agent, delete), uploads.py (tus uploads and their
parse into a release), retention.py (purging old releases). Callers import the module that
owns the function: `from apks.services import releases`."""
