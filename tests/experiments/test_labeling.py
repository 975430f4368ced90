"""gone.labeling: blinded sheets, reading filled sheets, the count table and Fleiss' kappa.

The key is the one experiments/table2_crop_strategy.py wrote (the `smoke_output` fixture: 3
images x box/mask/dilated); the raters' labels are given by code (`result_codes`: a1 = first
image's box, ..., c3 = third image's dilated)."""
import csv

import pytest

from gone import labeling

# no Keras: the TensorFlow run covers it (the `jax` subset is for code on the backend)

ALICE = {"a1": "solid", "a2": "striped", "a3": "good", "b1": "solid", "b2": "okay",
         "b3": "good", "c1": "striped", "c2": "good", "c3": "okay"}
BOB = {"a1": "Solid", "a2": "ok", "a3": "good", "b1": "striped", "b2": "okay", "b3": "okay",
       "c1": "striped", "c2": " good ", "c3": "okay"}


def _sheet(path, labels, codes, blank=()):
    """A filled sheet: `labels` by code (unknown codes are written as they are)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["result_id", "image_path", "label", "notes"])
        for code in sorted(labels, reverse=True):
            rid = codes.get(code, code)
            w.writerow([rid, f"to_label/{rid}.png", "" if code in blank else labels[code], ""])
    return path


@pytest.fixture()
def filled(smoke_output, result_codes):
    key = smoke_output / "private" / "labeling_key.csv"
    return (key, _sheet(smoke_output / "alice.csv", ALICE, result_codes),
            _sheet(smoke_output / "bob.csv", BOB, result_codes))


def test_single_rater_table_matches_hand_counts(filled):
    key, alice, _ = filled
    records = labeling.read_labeling_sheets([alice], key)
    table = labeling.make_table(records, columns=["box", "mask", "dilated"],
                                gradient_norms={"box": [1.0, 2.0], "mask": [3.0]})
    assert table.counts["box"] == {"good": 0, "okay": 0, "striped": 1, "solid": 2}
    assert table.counts["mask"] == {"good": 1, "okay": 1, "striped": 1, "solid": 0}
    assert table.counts["dilated"] == {"good": 2, "okay": 1, "striped": 0, "solid": 0}
    assert table.mean_gradient_norm["box"] == pytest.approx(1.5)
    assert table.mean_gradient_norm["mask"] == pytest.approx(3.0)
    assert table.kappa is None
    md = table.to_markdown()
    assert "| solid | 2 | 0 | 0 |" in md and "| good | 0 | 1 | 2 |" in md
    assert "| mean gradient norm | 1.5 | 3 | n/a |" in md


def test_two_raters_majority_and_fleiss_kappa(filled, tmp_path):
    key, alice, bob = filled
    records = labeling.read_labeling_sheets([alice, bob], key)
    table = labeling.make_table(records, columns=["box", "mask", "dilated"], title="Table 2")
    # Majority vote; ties go to the worse label (a2 striped/okay -> striped, b1 -> solid,
    # b3 good/okay -> okay).
    assert table.counts["box"] == {"good": 0, "okay": 0, "striped": 1, "solid": 2}
    assert table.counts["mask"] == {"good": 1, "okay": 1, "striped": 1, "solid": 0}
    assert table.counts["dilated"] == {"good": 1, "okay": 2, "striped": 0, "solid": 0}
    assert table.rater_counts["bob"]["mask"] == {"good": 1, "okay": 2, "striped": 0, "solid": 0}
    # By hand: P_bar = 6/9, P_e = (5^2 + 6^2 + 4^2 + 3^2) / 18^2 = 86/324 -> kappa = 130/238.
    assert table.kappa == pytest.approx(130 / 238)
    assert table.n_kappa_items == 9
    md_path, csv_path = table.write(tmp_path / "out", "table2")
    assert "Fleiss' kappa = 0.546" in md_path.read_text()
    rows = list(csv.reader(open(csv_path)))
    assert rows[0] == ["label", "box", "mask", "dilated"]
    assert rows[1] == ["good", "0", "1", "1"]


def test_fleiss_kappa_wikipedia_example():
    # The worked example of the Wikipedia article "Fleiss' kappa": 10 items, 14 raters -> 0.210.
    counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
              [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
              [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert labeling.fleiss_kappa(counts) == pytest.approx(0.20993, abs=1e-4)
    assert labeling.fleiss_kappa([[2, 0], [2, 0]]) == 1.0
    with pytest.raises(ValueError):
        labeling.fleiss_kappa([[2, 0], [1, 0]])


def test_write_sheet_is_blind_shuffled_and_deterministic(tmp_path):
    results = [{"image": f"img{i}", "strategy": s, "image_path": f"res/img{i}_{s}.png"}
               for i in range(6) for s in ("box", "mask", "dilated")]
    results.append({"image": "img0", "column": "all", "image_path": "res/img0_box.png"})
    sheet, key = labeling.write_labeling_sheet(results, tmp_path / "sheet.csv",
                                               tmp_path / "private" / "key.csv", seed=5)
    labeling.write_labeling_sheet(results, tmp_path / "again.csv", tmp_path / "key2.csv", seed=5)
    assert sheet.read_bytes() == (tmp_path / "again.csv").read_bytes()
    rows = list(csv.DictReader(open(sheet)))
    assert list(rows[0]) == list(labeling.SHEET_COLUMNS)
    assert len(rows) == 18                               # the shared result file appears once
    assert len({r["result_id"] for r in rows}) == 18
    assert all(r["label"] == "" for r in rows)
    assert "strategy" not in sheet.read_text() and "column" not in sheet.read_text()
    order = [r["image_path"] for r in rows]
    assert order != sorted(order)                        # shuffled
    k = labeling.read_key(key)
    assert sum(len(v) for v in k.values()) == 19
    shared = [v for v in k.values() if len(v) == 2][0]
    assert sorted(c for _, c in shared) == ["all", "box"]
    with pytest.raises(labeling.LabelingError):
        labeling.write_labeling_sheet(results, tmp_path / "s.csv", tmp_path / "s.csv")


def test_bad_sheets_give_clear_errors(filled, tmp_path, result_codes):
    key, alice, _ = filled
    bad = _sheet(tmp_path / "carol.csv", {**ALICE, "a1": "meh"}, result_codes)
    with pytest.raises(labeling.LabelingError, match=r"carol.csv:\d+: unknown label 'meh'"):
        labeling.read_labeling_sheets([bad], key)
    unknown = _sheet(tmp_path / "dave.csv", {**ALICE, "zz": "good"}, result_codes)
    with pytest.raises(labeling.LabelingError, match="'zz' is not in the key"):
        labeling.read_labeling_sheets([unknown], key)
    with pytest.raises(labeling.LabelingError, match="not found"):
        labeling.read_labeling_sheets([tmp_path / "nope.csv"], key)
    partial = _sheet(tmp_path / "erin.csv", ALICE, result_codes, blank=("a1", "b1"))
    assert len(labeling.read_labeling_sheets([partial], key)) == 7
    with pytest.raises(labeling.LabelingError, match="has no label"):
        labeling.read_labeling_sheets([partial], key, allow_unlabeled=False)


@pytest.mark.parametrize("existing", [False, True])
def test_private_key_is_owner_only_whatever_the_umask(tmp_path, existing):
    import os
    import stat
    out = tmp_path / "exp"
    if existing:   # a rerun over an earlier run's world-readable folder and key
        (out / "private").mkdir(parents=True)
        os.chmod(out / "private", 0o755)
        (out / "private" / "labeling_key.csv").write_text("old")
        os.chmod(out / "private" / "labeling_key.csv", 0o644)
    results = [{"image": f"img{i}", "column": c, "image_path": f"res/{i}_{c}.png"}
               for i in range(2) for c in ("box", "mask")]
    old = os.umask(0o022)
    try:
        sheet, key = labeling.write_labeling_sheet(results, out / "labeling_sheet.csv",
                                                   out / "private" / "labeling_key.csv", seed=1)
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(out / "private") == 0o700
    assert mode(key) == 0o600
    assert mode(sheet) == 0o644                     # the sheet is for the raters: the umask's mode
    assert sum(len(v) for v in labeling.read_key(key).values()) == 4
