"""The README and docs/ tell the truth about the tree: every command in the README's code blocks
exists with the options it is shown with, every relative link and every repository path named in
README.md and docs/ resolves, `gone --version` reports the package version, and every `gone`
option that takes a value shows its default in --help.

Nothing here runs a job: `gone` subcommands are checked against the parser in-process, scripts
and modules through their `--help` (absl scripts: `--helpfull`).
"""
import functools
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from gone import cli

REPO = pathlib.Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FRONT_PAGES = [REPO / "README.md", REPO / "docs" / "index.md"]
# Top-level folders of the repository: a backticked path starting with one of them must exist.
REPO_DIRS = ("benchmarks", "data_prep", "docs", "experiments", "gone", "inpaint", "lama", "mrcnn", "notebooks",
             "scripts", "tests")
OUR_PACKAGES = ("gone", "mrcnn", "inpaint", "lama", "data_prep", "gonefiles", "experiments", "benchmarks", "scripts")
SHELL_SEPARATORS = {"&&", "||", ";", "|"}
SKIPPED_PROGRAMS = {"pip", "pip3", "cd", "export", "mkdir", "ls", "cp", "mv", "rm", "cat", "echo",
                    "tensorboard", "nvidia-smi", "unzip", "tar", "wget", "curl", "git"}


def _rel(path):
    return path.relative_to(REPO).as_posix()


def _code_blocks(text):
    """The contents of the fenced code blocks of a markdown text that hold shell commands."""
    return [m.group(2) for m in re.finditer(r"^```([\w-]*)[^\n]*\n(.*?)^```", text, re.M | re.S)
            if m.group(1) in ("", "bash", "sh", "shell", "console")]


def _commands(block):
    """Each simple command (a token list) of a shell code block; continuation lines are joined."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        if not line or line.startswith("#"):
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            tokens = line.split()
        current = []
        for tok in tokens + [";"]:
            if tok in SHELL_SEPARATORS:
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(tok)
    return commands


def _strip_prefix(tokens):
    """Drop leading `VAR=value` assignments and `time`/`env`/`timeout N` wrappers."""
    tokens = list(tokens)
    while tokens:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", tokens[0]) or tokens[0] in ("time", "env"):
            tokens.pop(0)
        elif tokens[0] == "timeout" and len(tokens) > 1:
            tokens = tokens[2:]
        else:
            break
    return tokens


def _options(tokens):
    """The option names (`--flag`, `-o`) used in a command's arguments."""
    opts = []
    for tok in tokens:
        tok = tok.strip("[]{}()")
        if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", tok):
            opts.append(tok.split("=", 1)[0])
    return opts


def _inline_commands(text):
    """Commands shown as inline code in the prose and tables (`gone ...`, `python ...`), except
    templates with <placeholders>."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    spans = re.findall(r"`([^`\n]+)`", text)
    return [span for span in spans if re.match(r"(?:[A-Z_]+=\S+\s+)*(?:gone|python3?)\s", span + " ")
            and "<" not in span]


def _readme_commands():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = _code_blocks(text) + _inline_commands(text)
    return [(cmd, line) for block in blocks for cmd in _commands(block) for line in [" ".join(cmd)]]


def _source_of(target):
    """The source text of a script path or `-m module` target ('' when it cannot be read)."""
    import importlib.util
    if target[0] == "-m":
        spec = importlib.util.find_spec(target[1])
        origin = spec.origin if spec else None
        if spec and spec.submodule_search_locations:  # a package: `python -m pkg` runs pkg/__main__.py
            origin = os.path.join(list(spec.submodule_search_locations)[0], "__main__.py")
        path = pathlib.Path(origin) if origin else None
    else:
        path = REPO / target[0]
    return path.read_text(encoding="utf-8") if path and path.is_file() else ""


@functools.lru_cache(maxsize=None)
def _help_text(*argv):
    """stdout+stderr of `python ARGV --help` run in the repo; absl programs get `--helpfull`, which
    also lists the flags their modules define."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    run = lambda flag: subprocess.run([sys.executable, *argv, flag], cwd=REPO, env=env, capture_output=True,
                                      text=True, timeout=120)
    absl = re.search(r"^\s*from absl import|^\s*import absl", _source_of(argv), re.M)
    proc = run("--helpfull" if absl else "--help")
    text = proc.stdout + proc.stderr
    if not absl and "--helpfull" in text:
        proc = run("--helpfull")
        text += proc.stdout + proc.stderr
    return proc.returncode, text


def _gone_subparsers():
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return parser, sub.choices


def _check_gone(args):
    parser, subcommands = _gone_subparsers()
    positional = [a for a in args if not a.startswith("-")]
    if not positional:
        unknown = [o for o in _options(args) if o not in parser._option_string_actions]
        return f"unknown options {unknown}" if unknown else None
    name = positional[0]
    if name not in subcommands:
        return f"no subcommand {name!r} (have {sorted(subcommands)})"
    known = subcommands[name]._option_string_actions
    unknown = [o for o in _options(args) if o not in known]
    if unknown:
        return f"`gone {name}` has no options {unknown}"
    for option, value in zip(args, args[1:]):  # `--strategy traces`: a value the option accepts
        action = known.get(option)
        if action is not None and action.choices and value.strip("[]") not in map(str, action.choices):
            return f"`gone {name} {option}` takes {list(action.choices)}, not {value!r}"
    return None


def _check_python(args):
    if args[:1] == ["-m"]:
        if len(args) < 2:
            return "python -m without a module"
        import importlib.util
        if importlib.util.find_spec(args[1]) is None:
            return f"no module {args[1]}"
        target, rest = ["-m", args[1]], args[2:]
        if args[1].split(".")[0] not in OUR_PACKAGES:
            return None  # a third-party module (pytest, pip): that it is installed is enough
    elif args and args[0].endswith(".py"):
        if not (REPO / args[0]).is_file():
            return f"no script {args[0]}"
        target, rest = [args[0]], args[1:]
    else:
        return None  # `python -c ...` or an interactive session: nothing to check
    options = [o for o in _options(rest) if o not in ("-h", "--help", "--helpfull")]
    rc, text = _help_text(*target)
    if "Traceback (most recent call last)" in text:
        return f"`python {' '.join(target)} --help` failed:\n{text[-2000:]}"
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)]
    words = [a for a in rest if not a.startswith("-")]
    if missing and words and re.fullmatch(r"[a-z_]+", words[0]):
        rc, sub_text = _help_text(*target, words[0])  # a subcommand's own options
        missing = [o for o in missing if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", sub_text)]
    return f"`python {' '.join(target)}` has no options {missing}" if missing else None


def _check_command(tokens):
    tokens = _strip_prefix(tokens)
    if not tokens or tokens[0] in SKIPPED_PROGRAMS or tokens[:3] in (["python", "-m", "pip"],
                                                                     ["python3", "-m", "pip"]):
        return None
    prog, args = tokens[0], [t for t in tokens[1:] if t != "..."]
    if prog == "gone":
        return _check_gone(args)
    if prog in ("python", "python3"):
        return _check_python(args)
    if prog in ("bash", "sh"):
        return None if args and (REPO / args[0]).is_file() else f"no script {args[:1]}"
    if prog.startswith(("./", "scripts/", "experiments/")):
        return None if (REPO / prog).is_file() else f"no program {prog}"
    return f"unknown program {prog!r}: add a check for it to tests/test_docs.py or skip it there"


def test_readme_shows_commands():
    # The README's code blocks are where a newcomer starts: there must be some to check.
    assert any(cmd[0] == "gone" for cmd, _ in _readme_commands())
    assert any(cmd[0] == "python" for cmd, _ in _readme_commands())


def _help_targets(tokens):
    """The `python ...` target whose --help a command needs, or None."""
    tokens = _strip_prefix(tokens)
    if tokens[:1] not in (["python"], ["python3"]):
        return None
    args = tokens[1:]
    if args[:1] == ["-m"] and len(args) > 1 and args[1].split(".")[0] in OUR_PACKAGES:
        return ("-m", args[1])
    if args and args[0].endswith(".py") and (REPO / args[0]).is_file():
        return (args[0],)
    return None


def test_readme_commands_exist():
    from concurrent.futures import ThreadPoolExecutor
    commands = _readme_commands()
    targets = {t for t in (_help_targets(tokens) for tokens, _ in commands) if t}
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        list(pool.map(lambda t: _help_text(*t), sorted(targets)))  # run the --help calls side by side
    problems = []
    for tokens, line in commands:
        problem = _check_command(tokens)
        if problem:
            problems.append(f"README.md: `{line}`: {problem}")
    assert not problems, "\n".join(problems)


def _links(text):
    """Targets of the inline markdown links and images of a text, outside code blocks and spans."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)


def test_relative_links_resolve():
    problems = []
    for doc in DOC_FILES:
        for target in _links(doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # URL, mailto: or an anchor in the same page
            path = target.split("#", 1)[0]
            if not (doc.parent / path).exists():
                problems.append(f"{_rel(doc)}: link to {target} does not resolve")
    assert not problems, "\n".join(problems)


def test_named_repository_paths_exist():
    # `experiments/table2_crop_strategy.py`, `docs/gone.md`, `tests/x.py::test_y` named in the prose
    # or the code blocks of the front pages must exist; generated outputs (outputs/, runs/) are not
    # repository paths.
    pattern = re.compile(rf"(?<![\w./-])((?:{'|'.join(REPO_DIRS)})/[\w./-]*\.(?:py|md|sh|ipynb|yml|yaml|json))\b")
    problems = []
    for doc in FRONT_PAGES:
        for path in sorted(set(pattern.findall(doc.read_text(encoding="utf-8")))):
            if not (REPO / path).exists() and not (doc.parent / path).exists():
                problems.append(f"{_rel(doc)}: names {path}, which is not in the repository")
    assert not problems, "\n".join(problems)


def test_version_comes_from_package_metadata(capsys):
    from importlib.metadata import version

    import gone
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"gone {version('gone')}"
    assert version("gone") == gone.__version__  # one source: gone/__init__.py, read by setup.py
    setup_py = (REPO / "setup.py").read_text(encoding="utf-8")
    assert 'version="' not in setup_py and "version=VERSION" in setup_py


def _beam_parser():
    from gone import beam  # imports apache_beam only when a pipeline runs
    return beam.build_parser()


PARSERS = {**{f"gone {name}": functools.partial(lambda n: _gone_subparsers()[1][n], name)
              for name in sorted(_gone_subparsers()[1])},
           "python -m gone.beam": _beam_parser}


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_every_option_shows_its_default(command):
    parser = PARSERS[command]()
    formatter = parser._get_formatter()
    lacking = []
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0 or action.required:
            continue  # flags (store_true, --help) and required options have no default to show
        shown = formatter._expand_help(action) if action.help else ""
        if "default" not in shown.lower():
            lacking.append("/".join(action.option_strings))
    assert not lacking, f"`{command} --help` does not show the default of {lacking}"


def test_licence_is_apache_2():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
