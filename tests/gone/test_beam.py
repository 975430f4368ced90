"""``python -m gone.beam`` on the DirectRunner, with the fake models of conftest.py: the same output
bytes as ``gone remove``, a dead-letter file for the broken inputs, a rerun that does nothing."""
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("apache_beam", reason="Apache Beam not installed (pip install -e '.[beam]')")

from gone import beam as gbeam  # noqa: E402
from gone import cli  # noqa: E402
from gone.outputs import MANIFEST_NAME  # noqa: E402


@pytest.fixture
def photo_folder(tmp_path, make_scene):
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(make_scene()).save(d / "person.png")
    Image.fromarray(make_scene(people=((10, 10, 40, 30), (50, 80, 90, 110)))).save(d / "two.bmp")
    Image.fromarray(make_scene(people=())).save(d / "empty.jpg", quality=95)
    gray = make_scene()[..., 1].copy()
    gray[20:60, 30:50] = 0
    Image.fromarray(gray, "L").save(d / "gray.png")
    rgba = np.dstack([make_scene(), np.full((96, 128), 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    Image.fromarray(rgba, "RGBA").save(d / "rgba.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a full jpeg")
    (d / "notes.txt").write_text("not an image, ignored by folder expansion")
    return d


def _files(folder):
    """The outputs in ``folder`` (not the dead-letter file nor the manifest, compared apart)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.name not in (gbeam.DEAD_LETTER_NAME, MANIFEST_NAME)}


def test_beam_matches_gone_remove_dead_letter_and_rerun(photo_folder, tmp_path, fake_models, capsys):
    opts = ["--save-masks", "-q", "--batch-size", "2", "--strategy", "dilated", "--dilation", "3"]
    assert cli.main(["remove", str(photo_folder), "-o", str(tmp_path / "cli")] + opts) == 1
    out = tmp_path / "beam"
    rc = gbeam.main(["--input", str(photo_folder), "--output", str(out)] + opts + ["--runner", "DirectRunner"])
    captured = capsys.readouterr()
    assert rc == 1 and "Traceback" not in captured.err
    assert "5 done (3 inpainted, 2 nothing to remove" in captured.out
    assert "0 skipped (output exists), 1 failed" in captured.out
    expected = _files(tmp_path / "cli")
    assert sorted(expected) == ["empty.jpg", "empty_mask.png", "gray.png", "gray_mask.png", "person.png",
                                "person_mask.png", "rgba.png", "rgba_mask.png", "two.bmp", "two_mask.png"]
    got = _files(out)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], name
    lines = (out / gbeam.DEAD_LETTER_NAME).read_text().splitlines()
    assert len(lines) == 1
    path, reason = lines[0].split("\t")
    assert path == str(photo_folder / "broken.jpg") and "corrupt or truncated" in reason
    assert fake_models and fake_models[-1].batch_size == 2
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [MANIFEST_NAME]   # no temp files left
    # the same manifest as gone remove's: planned names and what was written
    assert (out / MANIFEST_NAME).read_text() == (tmp_path / "cli" / MANIFEST_NAME).read_text()

    # rerun: every finished output is skipped, nothing rewritten, no model built
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != gbeam.DEAD_LETTER_NAME}
    n_built = len(fake_models)
    rc = gbeam.main(["--input", str(photo_folder), "--output", str(out)] + opts)
    captured = capsys.readouterr()
    assert rc == 1
    assert "0 done" in captured.out and "5 skipped (output exists), 1 failed" in captured.out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != gbeam.DEAD_LETTER_NAME} == stamps
    assert len(fake_models) == n_built
    assert (out / gbeam.DEAD_LETTER_NAME).read_text().splitlines() == lines


def test_beam_usage_errors_clashing_names_and_inputs_kept(tmp_path, make_scene, fake_models, capsys):
    d = tmp_path / "in"
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    Image.fromarray(make_scene()).save(d / "a" / "x.png")
    Image.fromarray(make_scene(people=())).save(d / "b" / "x.png")
    pattern = str(d / "*" / "x.png")
    out = tmp_path / "out"
    assert gbeam.main(["--input", str(tmp_path / "none" / "*.png"), "--output", str(out), "-q"]) == cli.EXIT_USAGE
    assert "matches no files" in capsys.readouterr().err
    assert gbeam.main(["--input", pattern, "--output", str(out), "-q", "--min-score", "2"]) == cli.EXIT_USAGE
    assert "--min-score" in capsys.readouterr().err
    assert gbeam.main(["--input", pattern, "--output", str(out), "--strategyy", "box"]) == cli.EXIT_USAGE
    assert "unknown option(s) --strategyy" in capsys.readouterr().err
    # two inputs with one name: the same unique output names as gone remove
    assert cli.main(["remove", pattern, "-o", str(tmp_path / "cli"), "-q"]) == 0
    assert gbeam.main(["--input", pattern, "--output", str(out), "-q"]) == 0
    assert "2 done (1 inpainted, 1 nothing to remove" in capsys.readouterr().out
    expected = _files(tmp_path / "cli")
    assert len(expected) == 2 and _files(out) == expected
    assert (out / gbeam.DEAD_LETTER_NAME).read_text() == ""
    # an output that would replace an input: refused, the input kept
    before = (d / "a" / "x.png").read_bytes()
    assert gbeam.main(["--input", str(d / "a" / "x.png"), "--output", str(d / "a"), "-q", "--overwrite"]) == 1
    assert (d / "a" / "x.png").read_bytes() == before
    (line,) = (d / "a" / gbeam.DEAD_LETTER_NAME).read_text().splitlines()
    assert line == f"{d / 'a' / 'x.png'}\trefusing to write over the input {d / 'a' / 'x.png'}; choose another --output"


def test_beam_min_score_is_set_on_the_detector_config(tmp_path, make_scene, fake_leaves, capsys):
    """`python -m gone.beam --min-score 0.3` builds its detector (the real cli.build_remover, only
    the Keras build faked) with DETECTION_MIN_CONFIDENCE 0.3: a person scored 0.5 is removed."""
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(make_scene()).save(d / "p.png")
    fake_leaves["score"] = 0.5
    assert gbeam.main(["--input", str(d), "--output", str(tmp_path / "default"), "-q"]) == 0
    assert "1 done (0 inpainted, 1 nothing to remove" in capsys.readouterr().out
    assert fake_leaves["detectors"][-1].config.DETECTION_MIN_CONFIDENCE == 0.7
    assert gbeam.main(["--input", str(d), "--output", str(tmp_path / "low"), "-q", "--min-score", "0.3"]) == 0
    assert "1 done (1 inpainted, 0 nothing to remove" in capsys.readouterr().out
    assert fake_leaves["detectors"][-1].config.DETECTION_MIN_CONFIDENCE == 0.3


def test_beam_dead_letter_that_is_an_input_is_refused(tmp_path, make_scene, fake_models, capsys):
    """`--dead-letter inDL/img3.png` (an input): refused before anything runs, the input untouched."""
    d = tmp_path / "inDL"
    d.mkdir()
    for k in range(4):
        Image.fromarray(make_scene()).save(d / f"img{k}.png")
    before = (d / "img3.png").read_bytes()
    rc = gbeam.main(["--input", str(d), "--output", str(tmp_path / "out"), "--dead-letter", str(d / "img3.png"), "-q"])
    err = capsys.readouterr().err
    assert rc == cli.EXIT_USAGE and f"--dead-letter {d / 'img3.png'} is the input" in err
    assert (d / "img3.png").read_bytes() == before and fake_models == []
    assert not (tmp_path / "out").exists()


def test_beam_keeps_unrelated_files_and_cleans_killed_runs_temps(tmp_path, make_scene, fake_models, capsys):
    """An existing file the program did not write is kept (the input gets a unique name, as with
    gone remove), and the beam-temp-dead_letter.tsv-<uuid>/ folder a killed run left is removed
    after the next successful run."""
    import os
    d, out = tmp_path / "in", tmp_path / "out"
    d.mkdir()
    out.mkdir()
    Image.fromarray(make_scene()).save(d / "a.png")
    Image.fromarray(make_scene(people=())).save(out / "a.png")
    before = (out / "a.png").read_bytes()
    stale = out / f"beam-temp-{gbeam.DEAD_LETTER_NAME}-0123456789abcdef"
    stale.mkdir()
    (stale / "part").write_text("left by a SIGKILL")
    os.utime(stale, (1, 1))
    assert gbeam.main(["--input", str(d), "--output", str(out), "-q"]) == 0
    assert (out / "a.png").read_bytes() == before
    assert sorted(_files(out)) == ["a.png", "a_2.png"]
    assert not stale.exists()
    # the same names as gone remove in the same situation
    (tmp_path / "cli").mkdir()
    Image.fromarray(make_scene(people=())).save(tmp_path / "cli" / "a.png")
    assert cli.main(["remove", str(d), "-o", str(tmp_path / "cli"), "-q"]) == 0
    assert _files(tmp_path / "cli") == _files(out)


def test_beam_without_weights_stops_before_any_worker(tmp_path, make_scene, monkeypatch, fake_models, capsys):
    """No Mask R-CNN weights: the same exit code (2) and message as gone remove, no worker started,
    nothing created."""
    monkeypatch.setenv("GONE_WEIGHTS_DIR", str(tmp_path / "empty_cache"))
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(make_scene()).save(d / "p.png")
    rc = gbeam.main(["--input", str(d), "--output", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert rc == cli.main(["remove", str(d), "-o", str(tmp_path / "cli"), "-q"]) == cli.EXIT_USAGE
    assert "no Mask R-CNN weights given and none cached" in err and "--masks DIR" in err
    assert capsys.readouterr().err == err          # the same message from gone remove
    assert fake_models == [] and not (tmp_path / "out").exists() and not (tmp_path / "cli").exists()


def test_beam_user_masks_as_gone_remove(tmp_path, make_scene, fake_models, capsys):
    """--masks DIR: the same mask matching (gone.outputs.match_masks) and bytes as gone remove; an
    image without a mask is a dead letter."""
    d, m = tmp_path / "in", tmp_path / "masks"
    d.mkdir()
    m.mkdir()
    for n in ("a", "b"):
        Image.fromarray(make_scene(people=())).save(d / f"{n}.png")
    hole = np.zeros((96, 128), np.uint8)
    hole[20:50, 30:60] = 255
    Image.fromarray(hole).save(m / "a.png")
    argv = ["--masks", str(m), "--inpainter", "telea", "-q"]
    assert cli.main(["remove", str(d), "-o", str(tmp_path / "cli")] + argv) == 1
    assert "b.png: no mask" in capsys.readouterr().err
    assert gbeam.main(["--input", str(d), "--output", str(tmp_path / "beam")] + argv) == 1
    assert "1 done (1 inpainted" in capsys.readouterr().out
    assert _files(tmp_path / "beam") == _files(tmp_path / "cli") and sorted(_files(tmp_path / "cli")) == ["a.png"]
    (line,) = (tmp_path / "beam" / gbeam.DEAD_LETTER_NAME).read_text().splitlines()
    assert line.startswith(f"{d / 'b.png'}\tno mask b.*")
    assert fake_models[-1].detector is None          # no Mask R-CNN with --masks


def test_weights_are_checked_once(tmp_path, make_scene, monkeypatch, fake_models, capsys):
    """gone remove and gone.beam check the Mask R-CNN file once (gone.options.check_setup), not again
    when the detector is built."""
    from gone import models
    calls, real = [], models.check_detector_weights
    monkeypatch.setattr(models, "check_detector_weights", lambda *a, **k: calls.append(a) or real(*a, **k))
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(make_scene()).save(d / "p.png")
    assert cli.main(["remove", str(d), "-o", str(tmp_path / "cli"), "-q"]) == 0
    assert len(calls) == 1 and len(fake_models) == 1
    assert gbeam.main(["--input", str(d), "--output", str(tmp_path / "beam"), "-q"]) == 0
    assert len(calls) == 2 and len(fake_models) == 2
