"""Launchers: where the variants a command selects are run.

``local`` (the default) runs them one after another in this process. ``slurm``
sends them to a Slurm cluster as one job array, one task per variant, each
task running the same ``main.py`` command for its variant alone; the variants'
deterministic file names let the tasks share the work and ``--mode vis``
merge it (docs/cluster.md).
"""
LOCAL, SLURM = "local", "slurm"
LAUNCHERS = (LOCAL, SLURM)
