"""Tools that only test or measure the product, outside the production settings: the fleet
simulator, the FCM stand-in, the benchmarks' naive heartbeat view and their management commands.
Installed when DEV_TOOLS is on (mdm/settings.py: the embedded default and test runs; production
only with DEV_TOOLS=1). The simulator and the stand-in also run without Django
(`python -m loadtest.fcm_standin`, `from loadtest.simulator import Fleet`)."""
