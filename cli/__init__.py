"""main.py's command line, one module per job: each mode's options, the configuration they give and its runner."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN, EVAL, VIS = "train", "eval", "vis"  # the modes an option applies to
