"""gonefiles.quiet: TensorFlow's start-up noise is filtered for every entry point (import mrcnn /
inpaint, python -m inpaint.*, the experiments), real errors still show, and progress bars write
no terminal escapes into logs."""
import os
import pathlib
import subprocess
import sys


from gonefiles import quiet

REPO = pathlib.Path(__file__).resolve().parents[1]


def _python(code, **env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    environ.update(PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env=environ, timeout=300)


def test_import_mrcnn_is_quiet_and_sets_the_backend_defaults():
    proc = _python("import os, mrcnn.model, keras; keras.ops.add(1, 2); "
                   "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], os.environ['TF_CPP_MIN_LOG_LEVEL'])",
                   KERAS_BACKEND="tensorflow")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "2"]
    assert proc.stderr == ""


def test_filter_keeps_real_errors_and_drops_the_known_notes():
    noise = ("I0000 00:00:1.2 5375 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
             "E0000 meta_optimizer.cc:961] remapper failed: INVALID_ARGUMENT: Mutation::Apply\n"
             "WARNING: All log messages before absl::InitializeLog() is called are written to "
             "STDERR\n")
    code = ("import os, sys; from gonefiles.quiet import filter_native_stderr; "
            "filter_native_stderr(); "
            f"os.write(2, {noise.encode()!r}); os.write(2, b'E0000 a real error\\n'); "
            "print('python warning', file=sys.stderr); raise SystemExit(3)")
    proc = _python(code)
    assert proc.returncode == 3
    assert proc.stderr == "E0000 a real error\npython warning\n"


def test_the_filter_forwards_a_traceback():
    proc = _python("from gonefiles.quiet import filter_native_stderr; filter_native_stderr(); "
                   "1 / 0")
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1] == "ZeroDivisionError: division by zero"


def _bar_output(monkeypatch, capsys, tty):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty, raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)   # a notebook test may have loaded it
    bar = quiet.progbar(3)
    for i in range(1, 4):
        bar.update(i)
    return capsys.readouterr().out


def test_keras_progress_bar_off_a_terminal_prints_one_plain_line(monkeypatch, capsys):
    out = _bar_output(monkeypatch, capsys, tty=False)
    assert out.startswith("3/3 - ") and out.count("\n") == 1
    assert not any(c in out for c in ("\x1b", "\b", "\r"))


def test_keras_progress_bar_on_a_terminal_redraws(monkeypatch, capsys):
    out = _bar_output(monkeypatch, capsys, tty=True)
    assert "\x1b[" in out and "\r" in out
