"""Exit codes of the ``tracker`` command, for cron jobs and scripts."""

#: Success; 1: some sources failed; 2: the setup is wrong (sources.yaml, an environment
#: variable, an unusable state directory), or a command was used wrongly.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
