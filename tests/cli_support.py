"""Running a command-line entry point in-process, as the shell would, and checking its one-line errors."""
import pytest

from common.cli import run_main


def run_cli(main, argv, capsys):
    """``main(argv)`` through ``run_main``: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def visible_lines(text):
    """The lines a terminal shows: a progress bar redraws its line with carriage returns."""
    return [line.rsplit("\r", 1)[-1] for line in text.split("\n") if line.rsplit("\r", 1)[-1].strip()]


def assert_usage_error(status, err, *fragments):
    """Exit status 2 and exactly one visible stderr line, ``error: ...``, holding every fragment."""
    assert status == 2
    lines = visible_lines(err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
