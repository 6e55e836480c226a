"""The documentation holds to the code: every `python main.py`, `python synthetic_run.py`,
`python studies/fashion_mnist.py` and `python -m records.migrate` command in README.md and docs/ parses with the
program's own parser (and passes the checks each mode makes before any work), every relative link points to a file
and heading that exist, and the README stays short. Nothing is trained, read or measured: each command is parsed,
not run."""
import argparse
import functools
import importlib.util
import re
import runpy
import shlex
from pathlib import Path

import pytest

import synthetic_run
from cli.eval import eval_config_from_args
from cli.specs import layers_from_args, method_from_args, selection_aliases, specs_from_args, validate_layers
from cli.train import recipe_options
from main import build_parser
from planner import study_cli
from planner.slurm import FIELDS as SLURM_FIELDS
from planner.slurm import SlurmConfig
from records import migrate
from synthetic.config import SyntheticConfig

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# docs/results/ holds a published study's files; the summary.md that `--mode vis` redraws there is generated and
# git-ignored, not a page (regenerating a study's figures must not fail the suite)
PAGES = [README, *sorted(page for page in (ROOT / "docs").rglob("*.md")
                         if (ROOT / "docs" / "results") not in page.parents)]
STUDY_SCRIPT = "studies/fashion_mnist.py"
SCRIPTS = ("main.py", "synthetic_run.py", STUDY_SCRIPT)
MODULES = ("records.migrate",)  # run as `python -m MODULE`
PROGRAMS = SCRIPTS + tuple(f"-m {module}" for module in MODULES)  # what follows `python` in a command
README_MAX_LINES = 250

# A metavariable written in a command (`--dataset NAME`) stands for any value of that flag; it is checked with this
# example value. A metavariable not listed here fails the test, so a new one is a decision, not an accident.
EXAMPLES = {"--dataset": {"NAME": "fashion-mnist"}}


# ---- reading the pages ------------------------------------------------------------------------------------------

def relative(path):
    return path.relative_to(ROOT).as_posix()


def fenced_blocks(text):
    """(language, lines) of every fenced code block."""
    return [(m.group(1).strip(), m.group(2).split("\n"))
            for m in re.finditer(r"^```([^\n]*)\n(.*?)^```", text, re.S | re.M)]


def prose(text):
    """The text outside fenced code blocks."""
    return re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)


def shell_lines(lines):
    """A block's command lines: continuation lines joined, `NAME="value"` assignments substituted into later lines
    as the shell would (unquoted, word-split), and `for V in a b; do CMD; done` unrolled, one line per value."""
    joined, current = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    variables, out = {}, []
    for line in joined:
        assignment = re.fullmatch(r"\s*([A-Za-z_]\w*)=(\S.*)", line)
        if assignment:
            variables[assignment.group(1)] = " ".join(shlex.split(assignment.group(2), comments=True))
            continue
        line = re.sub(r"\$\{?([A-Za-z_]\w*)\}?", lambda m: variables.get(m.group(1), m.group(0)), line)
        loop = re.fullmatch(r"\s*for (\w+) in (.*?); do (.*?); done\s*", line)
        if loop:
            name, values, body = loop.groups()
            out += [body.replace(f"${name}", value) for value in shlex.split(values)]
        else:
            out.append(line)
    return out


def expand_placeholders(command):
    """The concrete commands a documented form stands for. The original repository's README wrote its commands
    with placeholders, and ours keeps them as written there: `{l1|dropout}` is one command per alternative;
    `[--flag ...]` is an optional part, checked both left out and given (all such parts at once: every part is
    optional on its own, so this covers each flag's parsing); a `...` that continues a list is dropped. A bracket
    that does not open with `--` is a value (`--layers [conv1,conv2]`), not an optional part."""
    alternatives = re.search(r"\{([^{}]*\|[^{}]*)\}", command)
    if alternatives:
        return [expanded for choice in alternatives.group(1).split("|")
                for expanded in expand_placeholders(command[:alternatives.start()] + choice
                                                    + command[alternatives.end():])]
    optional = r"\[(--[^\[\]]*)\]"
    forms = {re.sub(optional, "", command), re.sub(optional, r"\1", command)}
    return [" ".join(token for token in form.split() if token != "...") for form in sorted(forms)]


def split_commands(line):
    """The simple commands of a shell line, as argument lists (quotes removed, comments dropped)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, current = [], []
    for token in lexer:
        if token and set(token) <= set(";&|"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    return [command for command in commands + [current] if command]


def script_command(argv):
    """(program, arguments) of `python SCRIPT ...` or `python -m MODULE ...`, or None for any other command."""
    if len(argv) >= 2 and argv[0] in ("python", "python3") and argv[1] in SCRIPTS:
        return argv[1], argv[2:]
    if len(argv) >= 3 and argv[0] in ("python", "python3") and argv[1] == "-m" and argv[2] in MODULES:
        return f"-m {argv[2]}", argv[3:]
    return None


def documented_commands():
    """(page, script, arguments, as written) of every command of the three scripts in the README and docs/: in the
    fenced shell blocks, and written inline in the prose. A notebook's Python block holds no shell commands; an
    inline mention of a script without arguments (`python main.py`) names it and is not a command."""
    found = []
    for page in PAGES:
        text = page.read_text()
        lines = [line for language, block in fenced_blocks(text) if language in ("", "bash", "sh", "console")
                 for line in shell_lines(block)]
        inline = [m.group(1).replace("\n", " ") for m in re.finditer(
            r"`(python3? (?:%s) [^`]+)`" % "|".join(map(re.escape, PROGRAMS)), prose(text))]
        for line in lines + inline:
            if not re.search(r"python3? (%s)" % "|".join(map(re.escape, PROGRAMS)), line):
                continue  # another tool, or a program's output
            for form in expand_placeholders(line):
                for argv in split_commands(form):
                    command = script_command(argv)
                    if command:
                        found.append((relative(page), *command, line.strip()))
    return found


COMMANDS = documented_commands()


# ---- the parsers ------------------------------------------------------------------------------------------------

def with_examples(arguments):
    concrete = list(arguments)
    for i, token in enumerate(concrete):
        if re.fullmatch(r"[A-Z][A-Z_]*", token) and i > 0 and concrete[i - 1].startswith("--"):
            examples = EXAMPLES.get(concrete[i - 1], {})
            assert token in examples, f"metavariable {concrete[i - 1]} {token} has no example value in EXAMPLES"
            concrete[i] = examples[token]
    return concrete


def check_main(arguments):
    """main.py's parse, its refusal of another mode's options, and every check a mode makes from its options
    before it reads any file (the variants, the recipe or evaluation settings, the launcher's settings)."""
    parser = build_parser()
    args = parser.parse_args(arguments)
    parser.reject_other_modes(arguments, args.mode)
    with parser.errors_as_flags(selection_aliases(args), mode=args.mode):
        if args.mode == "vis":
            method_from_args(args)
            if args.layers is not None:
                validate_layers(layers_from_args(args))
            return
        # the launcher's settings as main.py checks them (less its look for sbatch on PATH: a machine without
        # Slurm parses a documented cluster command too)
        SlurmConfig.from_options(args.launcher, **{field: getattr(args, field) for field in SLURM_FIELDS})
        if args.mode == "train":
            dataset, _, recipe = recipe_options(args)
            specs_from_args(args, dataset, recipe.model)
        else:  # eval takes the data set from the checkpoints where --dataset is absent; its settings parse alike
            dataset = args.dataset or "cifar10"
            specs_from_args(args, dataset)
            eval_config_from_args(args, dataset)


def check_synthetic(arguments):
    parser = synthetic_run.build_parser()
    args = parser.parse_args(arguments)
    with parser.errors_as_flags():
        SyntheticConfig.from_options(args.mode, **{flag: getattr(args, flag) for flag in synthetic_run.CONFIG_FLAGS})


class _Parsed(Exception):
    pass


def parser_of(run):
    """The ArgumentParser that ``run()`` builds and parses with: ``run`` is stopped where it parses (parse_args
    raises), before it does any work, and that parser is kept."""
    captured = {}

    def stop(parser, args=None, namespace=None):
        captured["parser"] = parser
        raise _Parsed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", stop)
        with pytest.raises(_Parsed):
            run()
    return captured["parser"]


@functools.cache
def study_script():
    """(study, parts, parser) of studies/fashion_mnist.py as its ``__main__`` block hands them to
    ``planner.study_cli.run_study``: the file is run as a script with run_study replaced by a recorder, so the
    parts and tables checked are the file's own; the parser is the one ``study_cli.main`` builds from them. Nothing
    of the study runs."""
    handed = {}

    def record(study, **kwargs):
        handed.update(study=study, kwargs=kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(study_cli, "run_study", record)
        runpy.run_path(str(ROOT / STUDY_SCRIPT), run_name="__main__")
    study, kwargs = handed["study"], handed["kwargs"]
    parser = parser_of(lambda: study_cli.main(study, argv=[], **kwargs))
    return study, kwargs.get("parts", {}), parser


def check_study(arguments):
    study, parts, parser = study_script()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as stop:
        raise AssertionError(f"{STUDY_SCRIPT} refuses {' '.join(arguments)} (exit {stop.code})") from None
    # the one rule study_cli.main checks after parsing, before any work: --dataset names a data set the chosen part
    # of the study may also run on
    chosen = next((part for flag, part in parts.items() if getattr(args, flag.replace("-", "_"))), study)
    assert args.dataset is None or args.dataset in chosen.also_on, \
        f"--dataset {args.dataset}: {chosen.title} runs on {chosen.dataset} only" + (
            f" or {', '.join(chosen.also_on)}" if chosen.also_on else "")


@functools.cache
def migrate_parser():
    return parser_of(lambda: migrate.main([]))


def check_migrate(arguments):
    """The migration's parse only: a documented migration names schema-4 folders that were moved by it and need not
    exist any more."""
    try:
        migrate_parser().parse_args(arguments)
    except SystemExit as stop:
        raise AssertionError(f"python -m records.migrate refuses {' '.join(arguments)} (exit {stop.code})") from None


CHECKS = {"main.py": check_main, "synthetic_run.py": check_synthetic, STUDY_SCRIPT: check_study,
          "-m records.migrate": check_migrate}


def test_the_readme_and_docs_show_commands_of_every_script():
    scripts = {script for _, script, _, _ in COMMANDS}
    assert scripts == set(PROGRAMS)
    readme = [(script, arguments) for page, script, arguments, _ in COMMANDS if page == "README.md"]
    assert ("synthetic_run.py", ["--mode", "l1"]) in readme and ("synthetic_run.py", ["--mode", "dropout"]) in readme
    check_main(["--mode", "train", "--layers", "[conv1,conv2]"])  # the README's "also --layers [conv1,conv2]"
    assert len(COMMANDS) >= 60


@pytest.mark.parametrize("page, script, arguments, written", COMMANDS,
                         ids=[f"{page}: {script} {' '.join(arguments)}" for page, script, arguments, _ in COMMANDS])
def test_every_documented_command_parses(page, script, arguments, written):
    if "--help" in arguments or "-h" in arguments:  # the help itself: the script and its flags exist
        assert (ROOT / script).is_file()
        return
    try:
        CHECKS[script](with_examples(arguments))
    except Exception as error:  # noqa: BLE001 -- any refusal is a documentation error; say where
        raise AssertionError(f"{page}: `{written}` is refused: {error}") from None


def test_bad_commands_are_caught():
    """The checks above would notice a documented command that no longer works."""
    for script, arguments in [("main.py", ["--mode", "train", "--epochz", "3"]),
                              ("main.py", ["--mode", "vis", "--epochs", "3"]),
                              ("main.py", ["--mode", "train", "--strength", "-1"]),
                              ("main.py", ["--mode", "eval", "--attacks", "pgd", "pgd"]),
                              ("synthetic_run.py", ["--mode", "l1", "--steps", "0"]),
                              ("main.py", ["--mode", "eval", "--workers", "0"]),
                              ("main.py", ["--mode", "train", "--wait"]),
                              ("main.py", ["--mode", "vis", "--print"]),
                              (STUDY_SCRIPT, ["--dataset", "cifar10-jpeg"]),
                              (STUDY_SCRIPT, ["--dose-response", "--dataset", "cifar10-jpeg"]),
                              (STUDY_SCRIPT, ["--first-study-tables"]),
                              (STUDY_SCRIPT, ["--tables", "--design"]),
                              (STUDY_SCRIPT, ["--gpu", "--dose-response"]),
                              ("-m records.migrate", []),
                              ("-m records.migrate", ["docs/results/first-study/fashion-mnist"]),
                              ("-m records.migrate", ["OLD", "STORE", "EXTRA"])]:
        with pytest.raises((Exception, SystemExit)):
            CHECKS[script](arguments)


def programs_run():
    """(page, program) of every `python FILE.py` and `python -m MODULE` a page runs, in its shell blocks and its
    inline commands: the scripts checked above, and the others (bench/, the tests' helpers) too."""
    found = []
    for page in PAGES:
        text = page.read_text()
        lines = [line for language, block in fenced_blocks(text) if language in ("", "bash", "sh", "console")
                 for line in shell_lines(block)]
        found += [(relative(page), program) for program in re.findall(r"`python3? (-m [\w.]+|[\w./-]+\.py)[ `]",
                                                                       prose(text).replace("\n", " "))]
        for line in lines:
            if not re.search(r"\bpython3? ", line):
                continue  # another tool, a program's output, a diagram
            for argv in split_commands(line):
                if len(argv) >= 2 and argv[0] in ("python", "python3") and argv[1].endswith(".py"):
                    found.append((relative(page), argv[1]))
                elif len(argv) >= 3 and argv[0] in ("python", "python3") and argv[1] == "-m":
                    found.append((relative(page), f"-m {argv[2]}"))
    return sorted(set(found))


PROGRAMS_RUN = programs_run()


@pytest.mark.parametrize("page, program", PROGRAMS_RUN,
                         ids=[f"{page}: python {program}" for page, program in PROGRAMS_RUN])
def test_every_program_a_page_runs_exists(page, program):
    """A removed script (experiments/fashion_mnist.py, bench/eval_overhead.py) or module (evaluation.migrate) is not
    shown as a command to run; a page that mentions one says where it went, in prose."""
    if program.startswith("-m "):
        module = program[3:]
        assert importlib.util.find_spec(module) is not None, f"{page}: python -m {module}: no such module"
    else:
        assert (ROOT / program).is_file(), f"{page}: python {program}: no such file in the repository"


def test_placeholders_expand_to_the_commands_they_stand_for():
    assert expand_placeholders("python synthetic_run.py --mode {l1|dropout}") == [
        "python synthetic_run.py --mode l1", "python synthetic_run.py --mode dropout"]
    assert expand_placeholders("python main.py --mode train [--dropout] [--layers conv1 conv2 ...]") == [
        "python main.py --mode train", "python main.py --mode train --dropout --layers conv1 conv2"]
    assert expand_placeholders("python main.py --mode train --layers [conv1,conv2]") == [
        "python main.py --mode train --layers [conv1,conv2]"]
    lines = shell_lines(['F="--dataset x --threads 1"', "python main.py --mode train $F \\", "    --quick",
                         'for f in "--d 5" ""; do python synthetic_run.py --mode l1 $f; done'])
    assert lines == ["python main.py --mode train --dataset x --threads 1      --quick",
                     "python synthetic_run.py --mode l1 --d 5", "python synthetic_run.py --mode l1 "]
    assert split_commands("python a.py --x 1 && python b.py  # comment; not a command") == [
        ["python", "a.py", "--x", "1"], ["python", "b.py"]]


# ---- links ------------------------------------------------------------------------------------------------------

def slug(heading):
    """GitHub's anchor of a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.replace("`", "").replace("\\", "").replace("*", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page):
    text = prose(page.read_text())
    found, seen = set(), {}
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", text, re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    found |= set(re.findall(r"<a name=\"([^\"]+)\"", text))
    return found


def links(page):
    text = prose(page.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans are not links
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"<img [^>]*src=\"([^\"]+)\"", text)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]  # http:, mailto: ... are not checked


LINKS = [(relative(page), target) for page in PAGES for target in links(page)]


@pytest.mark.parametrize("page, target", LINKS, ids=[f"{page} -> {target}" for page, target in LINKS])
def test_every_relative_link_points_to_an_existing_file_and_heading(page, target):
    path, _, anchor = target.partition("#")
    file = (ROOT / page).parent / path if path else ROOT / page
    assert file.resolve().exists(), f"{page}: {target} points to a missing file"
    if anchor:
        assert file.suffix == ".md", f"{page}: {target} has an anchor into a file that is not a page"
        assert anchor in anchors(file), f"{page}: {target}: no heading or anchor #{anchor} in {relative(file)}"


def test_every_page_in_docs_is_reachable_from_the_readme_map():
    readme = README.read_text()
    for page in PAGES[1:]:
        assert f"({relative(page)})" in readme, f"the README's map of the docs leaves out {relative(page)}"


def test_the_readme_is_read_in_five_minutes():
    lines = README.read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; at most {README_MAX_LINES}: move text to docs/"
