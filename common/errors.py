"""The project's exceptions: library code raises them in terms of the Python API; only ``common.cli`` turns them
into the one-line exit-2 message naming the flag to change."""


class ProjectError(Exception):
    """Base of the errors a user can fix: a bad setting or a bad file. Never a bug in the code."""


class ConfigError(ProjectError, ValueError):
    """A setting with a bad value. ``field`` names the setting (a config attribute or keyword argument)."""

    def __init__(self, field, problem):
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


class FileProblem(ProjectError):
    """A file or folder that is missing, unreadable, corrupt, foreign or unwritable. ``location``: the setting that
    chooses its place (``"results_dir"``); ``overwrite``: the one that would replace it (``"force"``), if any."""

    def __init__(self, message, location=None, overwrite=None):
        super().__init__(message)
        self.location = location
        self.overwrite = overwrite


class UsageError(ProjectError):
    """Bad command-line input that only the command line can detect; its message already speaks in flags."""


class SchedulerError(ProjectError):
    """A cluster scheduler that refused a request or could not be asked; the message says what Slurm answered."""
