"""main.py's command line, one module per job: the options of each mode, the configuration objects they give,
and the runner that hands those to the packages. main.py builds its parser from these modules and dispatches.

``ROOT``: the repository's root (main.py's folder); ``TRAIN``, ``EVAL``, ``VIS``: the modes an option applies to.
"""
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
TRAIN, EVAL, VIS = "train", "eval", "vis"
