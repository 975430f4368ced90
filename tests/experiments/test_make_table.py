"""experiments/make_table.py: encodings, agreement statistics, broken inputs, safe output names.

On the output experiments/table2_crop_strategy.py wrote (the `smoke_output` fixture: 3 images x
box/mask/dilated); the raters' labels are given by code (`result_codes`: a1 = first image's box,
..., c3 = third image's dilated)."""
import csv
import importlib
import pathlib
import sys

import numpy as np
import pytest

from gone import labeling

REPO = pathlib.Path(__file__).resolve().parents[2]
ALICE = {"a1": "solid", "a2": "striped", "a3": "good", "b1": "solid", "b2": "okay",
         "b3": "good", "c1": "striped", "c2": "good", "c3": "okay"}
BOB = {"a1": "Solid", "a2": "ok", "a3": "good", "b1": "striped", "b2": "okay", "b3": "okay",
       "c1": "striped", "c2": " good ", "c3": "okay"}


@pytest.fixture(scope="module")
def make_table():
    sys.path.insert(0, str(REPO / "experiments"))
    module = importlib.import_module("make_table")
    yield module
    sys.path.remove(str(REPO / "experiments"))


def _run(make_table, capsys, *args):
    flags = make_table.FLAGS
    flags.unparse_flags()
    argv = flags(["make_table.py", *args])
    rc = make_table.main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


CODES = {}   # code -> result id of the smoke output's key (set by the `out` fixture)


def _sheet_text(labels, sep=",", rater=None):
    lines = [sep.join(["result_id", "image_path", "label", "notes"] + (["rater"] if rater else []))]
    for code in sorted(labels):
        rid = CODES[code]
        lines.append(sep.join([rid, f"to_label/{rid}.png", labels[code], "café « naïve »"]
                              + ([rater] if rater else [])))
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture()
def out(smoke_output, result_codes):
    CODES.clear()
    CODES.update(result_codes)
    (smoke_output / "labels").mkdir()
    return smoke_output


@pytest.mark.parametrize("encoding,sep", [("utf-8", ","), ("utf-8-sig", ", "), ("cp1252", ", "),
                                          ("utf-16", ","), ("utf-16-le", ",  ")])
def test_sheets_in_common_encodings_and_spaced_commas(make_table, capsys, out, encoding, sep):
    rater = "Zoë" if encoding != "utf-16-le" else None
    (out / "labels" / "alice.csv").write_bytes(_sheet_text(ALICE, sep, rater).encode(encoding))
    (out / "labels" / "bob.csv").write_text(_sheet_text(BOB), encoding="utf-8")
    rc, stdout, err = _run(make_table, capsys, f"--output_dir={out}", "--bootstrap=200")
    assert rc == 0, err
    table = {row[0]: row[1:] for row in csv.reader(open(out / "table.csv", encoding="utf-8"))}
    first = "Zoë" if rater else "alice"
    assert table[f"{first}:solid"] == ["2", "0", "0"]
    assert table[f"{first}:good"] == ["0", "1", "2"]
    assert table["good"] == ["0", "1", "1"] and table["okay"] == ["0", "1", "2"]
    rows = list(csv.DictReader(open(out / "per_image.csv", encoding="utf-8")))
    expected = [np.mean([float(r["gradient_norm"]) for r in rows if r["strategy"] == s])
                for s in ("box", "mask", "dilated")]
    np.testing.assert_allclose([float(x) for x in table["mean_gradient_norm"]], expected, rtol=1e-3)
    assert float(table["fleiss_kappa"][0]) == pytest.approx(130 / 238, abs=1e-6)
    assert f"Rater {first}:" in stdout and "Rater bob:" in stdout


def test_agreement_statistics_come_from_statsmodels_with_a_bootstrap_interval(out, tmp_path):
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    for name, labels in (("alice", ALICE), ("bob", BOB)):
        (tmp_path / f"{name}.csv").write_text(_sheet_text(labels))
    records = labeling.read_labeling_sheets([tmp_path / "alice.csv", tmp_path / "bob.csv"],
                                            out / "private" / "labeling_key.csv")
    table = labeling.make_table(records, ["box", "mask", "dilated"], n_bootstrap=300, seed=1)
    votes = np.array([[labeling.LABELS.index(labeling.normalize_label(x[r])) for x in (ALICE, BOB)]
                      for r in sorted(ALICE)])
    counts, _ = aggregate_raters(votes, n_cat=4)
    assert table.kappa == pytest.approx(fleiss_kappa(counts), abs=1e-12)
    assert table.kappa == pytest.approx(130 / 238)
    # Per-label kappa by hand (Fleiss 1971): 1 - sum x(n - x) / (N n (n - 1) p q).
    # good: x = 2 (a3, c2), 1 (b3); p = 5/18 -> 1 - 1 / (18 * 5/18 * 13/18) = 47/65.
    assert table.label_kappa["good"] == pytest.approx(47 / 65)
    assert table.label_kappa["solid"] == pytest.approx(0.6)
    low, high = table.kappa_interval
    assert -1.0 <= low <= table.kappa <= high <= 1.0 and high > low
    assert table.n_kappa_images == 3
    again = labeling.make_table(records, ["box", "mask", "dilated"], n_bootstrap=300, seed=1)
    assert again.kappa_interval == table.kappa_interval          # seeded
    md = table.to_markdown()
    assert "Fleiss' kappa = 0.546 (95 % bootstrap interval" in md and "resampling 3 images" in md
    assert "| kappa (label vs rest) | 0.7231 |" in md
    assert md.index("Majority vote") < md.index("Rater alice:") < md.index("Rater bob:")
    # One image with a single result per rater: kappa defined, no interval.
    first = min(r.image for r in records)
    single = labeling.make_table([r for r in records if r.image == first], n_bootstrap=50)
    assert single.kappa is not None and np.isnan(single.kappa_interval[0])


@pytest.mark.parametrize("what,content,message", [
    ("run_info.json", b'{"columns": ["box", ', "run_info.json is not valid JSON (line 1"),
    ("run_info.json", b'["box"]', "is not a JSON object"),
    ("run_info.json", b'{"columns": "box"}', "'columns' must be a list"),
    ("run_info.json", b"\xff\xfe\x00\xd8garbage", "run_info.json"),
    ("per_image.csv", b"image,strategy,gradient_norm\nimg1,box,fast\n",
     "gradient_norm is not a number"),
    ("per_image.csv", b"image,strategy\nimg1,box\n", "lacks column(s) gradient_norm"),
    ("per_image.csv", b'image,strategy,gradient_norm\n"img1,box,1\n\x00', "per_image.csv"),
])
def test_broken_inputs_give_one_line(make_table, capsys, out, what, content, message):
    (out / "labels" / "alice.csv").write_text(_sheet_text(ALICE))
    (out / what).write_bytes(content)
    rc, _, err = _run(make_table, capsys, f"--output_dir={out}", "--bootstrap=0")
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err and message in err, err
    assert not (out / "table.md").exists()


@pytest.mark.parametrize("name", ["../escaped", "/tmp/escaped", "sub/escaped", "..", ".hidden",
                                  "a\\b", "", "x" * 200])
def test_table_name_cannot_leave_the_output_folder(make_table, capsys, out, name):
    (out / "labels" / "alice.csv").write_text(_sheet_text(ALICE))
    before = sorted(p for p in out.parent.rglob("*"))
    rc, _, err = _run(make_table, capsys, f"--output_dir={out}", f"--table_name={name}")
    assert rc == 2 and "--table_name must be a plain file name" in err
    assert sorted(p for p in out.parent.rglob("*")) == before
    rc, _, err = _run(make_table, capsys, f"--output_dir={out}", "--table_name=t2.v1",
                      "--bootstrap=0")
    assert rc == 0 and (out / "t2.v1.md").is_file() and (out / "t2.v1.csv").is_file()


def test_table_name_never_replaces_an_input(make_table, capsys, out):
    sheet = out / "alice.csv"
    sheet.write_bytes(_sheet_text(ALICE).encode())
    rc, _, err = _run(make_table, capsys, f"--output_dir={out}", f"--sheets={sheet}",
                      "--table_name=alice")
    assert rc == 2 and f"would replace {out / 'alice.csv'}" in err
    assert sheet.read_bytes() == _sheet_text(ALICE).encode()


@pytest.mark.parametrize("name", ["labeling_sheet", "summary", "per_image", "table6", "figure3_label_examples",
                                  "Summary"])
def test_table_name_never_replaces_a_file_the_experiment_wrote(make_table, capsys, out, name):
    sys.path.insert(0, str(REPO / "experiments"))
    import _common
    own = {p: f"{p} written by the experiment\n" for p in ("labeling_sheet.csv", "summary.md", "summary.csv",
                                                             "table6.md", "figure3_label_examples.csv")}
    for rel, text in own.items():
        (out / rel).write_text(text)
    assert {"labeling_sheet.csv", "summary.md", "per_image.csv", "table6.csv"} <= set(_common.EXPERIMENT_FILES)
    (out / "labels" / "alice.csv").write_text(_sheet_text(ALICE))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    rc, _, err = _run(make_table, capsys, f"--output_dir={out}", f"--table_name={name}", "--bootstrap=0")
    assert rc == 2 and f"--table_name={name} would replace {out / name}." in err and err.count("\n") == 1
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_errors_about_bad_sheets_never_print_other_files(make_table, capsys, out, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET_USER,hunter2_password\nroot:x:0:0\n")
    binary = tmp_path / "blob.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    (out / "labels" / "alice.csv").write_text(_sheet_text(ALICE))
    for args in ([f"--sheets={secret}"], [f"--key={secret}"], [f"--sheets={binary}"],
                 [f"--key={binary}"]):
        rc, stdout, err = _run(make_table, capsys, f"--output_dir={out}", *args)
        assert rc == 2, args
        assert err.count("\n") == 1 and "Traceback" not in err
        for word in ("TOPSECRET", "hunter2", "root:x"):
            assert word not in err and word not in stdout


def test_decode_text_fallbacks():
    assert labeling.decode_text("é,ü".encode("utf-8")) == "é,ü"
    assert labeling.decode_text("\ufeffé".encode("utf-8")) == "é"
    assert labeling.decode_text("é€".encode("cp1252")) == "é€"
    assert labeling.decode_text("ab,é".encode("utf-16")) == "ab,é"
    assert labeling.decode_text("ab,c".encode("utf-16-be")) == "ab,c"
    with pytest.raises(labeling.LabelingError, match="neither UTF-8, UTF-16 nor cp1252"):
        labeling.decode_text(b"\x81\x8d\x8f\x90\x9d")
