"""The project's studies, one declarative file each (``planner.study.Study``), run as ``python studies/NAME.py``."""
