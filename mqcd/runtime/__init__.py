"""What surrounds a run's compute so that a result is never lost or silently wrong.

* :mod:`.lock`: an exclusive lock on the output and its checkpoint for the whole run;
* :mod:`.resources`: memory and disk estimates, refused up front;
* :mod:`.signals`: SIGINT/SIGTERM finish the step, save a checkpoint and stop cleanly;
* :mod:`.progress`: progress bar / log lines (logging module, logger ``mqcd``) and the warning
  categories of a run.

The cases these parts answer, with the commands that reproduce them, are in docs/reliability.md.
"""
from .lock import LockedError, RunLock, lock_path
from .progress import (DroppedTrajectoriesWarning, Progress, RunProblemWarning, cli_logging,
                       resolve_mode)
from .resources import ResourceError, available_memory, format_bytes
from .signals import RunInterrupted, StopSignals

__all__ = ["LockedError", "RunLock", "lock_path", "DroppedTrajectoriesWarning", "Progress",
           "RunProblemWarning", "cli_logging", "resolve_mode", "ResourceError",
           "available_memory", "format_bytes", "RunInterrupted", "StopSignals"]
