"""The project's exceptions.

Library code (everything a notebook can import) raises the plain exceptions
below, with messages that say what is wrong in terms of the Python API. Only
the command-line layer (``common.cli``) turns them into the one-line exit-2
message, adding the command-line flag that changes the offending setting.
"""


class ProjectError(Exception):
    """Base of the errors a user can fix: a bad setting or a bad file. Never a bug in the code."""


class ConfigError(ProjectError, ValueError):
    """A setting with a bad value. ``field`` names the setting (a config attribute or keyword argument)."""

    def __init__(self, field, problem):
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


class FileProblem(ProjectError):
    """A file or folder that is missing, unreadable, corrupt, foreign or unwritable.

    ``location`` names the setting that points at where the file lives (e.g.
    ``"data_dir"``, ``"models_dir"``, ``"results_dir"``), so a command line can
    say which flag chooses another place; None when no setting does.

    ``overwrite`` names the boolean setting that would replace the file instead
    (e.g. ``"force"``), where there is one.
    """

    def __init__(self, message, location=None, overwrite=None):
        super().__init__(message)
        self.location = location
        self.overwrite = overwrite


class UsageError(ProjectError):
    """Bad command-line input that only the command line can detect (an option's combination, a flag of
    another mode). Its message already speaks in flags."""


class SchedulerError(ProjectError):
    """A cluster scheduler that refused a request (a job it will not queue) or could not be asked (its commands
    missing or failing). The message says what Slurm answered and which setting to change."""
