"""Figure 3: examples of each label (good / okay / striped / solid), chosen from the raters' labels.

Command (after an experiment, labeling with `gone label` and `gone label OUTPUT_DIR --export`):

    python experiments/fig3_label_examples.py --output_dir outputs/table2_crop_strategy \
        [--examples 4] [--sheets ...] [--key ...]

For each label, the results whose majority label (over raters; ties go to the worse label) is
that label, most agreed first (share of raters who chose it, then result id), up to --examples
of them. Writes <output_dir>/figure3_label_examples.png (one row per label) and
figure3_label_examples.csv (label, result_id, image, column, agreement, path of each panel).

Expected result: a 4-row figure; a label no result got shows an empty row.
"""
import collections
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _common  # noqa: E402
import make_table  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = _common.FLAGS
flags.DEFINE_integer("examples", 4, "examples per row of Figures 3 and 7")


def result_paths(out: pathlib.Path) -> dict:
    """result_id -> (result image path, original path or None), both inside `out`."""
    from gone import labeling

    key_path = pathlib.Path(FLAGS.key) if FLAGS.key else out / "private" / "labeling_key.csv"
    originals = {}
    per_image = out / "per_image.csv"
    if per_image.is_file():
        try:
            for row in labeling.read_csv_rows(per_image, (), "per-image table"):
                if row.get("image") and row.get("original_path"):
                    originals.setdefault(row["image"], row["original_path"])
        except labeling.LabelingError as err:
            raise _common.ExperimentError(str(err)) from None
    try:
        rows = labeling.read_csv_rows(key_path, ("result_id", "image", "image_path"),
                                      "labeling key")
    except labeling.LabelingError as err:
        raise _common.ExperimentError(str(err)) from None
    root = out.resolve()
    paths = {}
    for row in rows:
        result = _inside(root, row["image_path"])
        original = _inside(root, originals.get(row["image"],
                                               f"images/{row['image']}/original.png"))
        if result is not None:
            paths[row["result_id"]] = (result, original)
    return paths


def _inside(root: pathlib.Path, rel: str):
    """root/rel if it is an existing file inside root (symlinks resolved), else None."""
    if not rel or pathlib.PurePath(rel).is_absolute():
        return None
    path = (root / rel).resolve()
    return path if root in path.parents and path.is_file() else None


def votes_by_result(records) -> dict:
    """result_id -> {"image", "column", "votes": {rater: label}, "tags": Counter}."""
    by = {}
    for r in records:
        entry = by.setdefault(r.result_id, {"image": r.image, "column": r.column, "votes": {},
                                            "tags": collections.Counter()})
        if r.rater not in entry["votes"]:
            entry["votes"][r.rater] = r.label
            entry["tags"].update(set(r.tags))
    return by


def _load(path):
    from gone.io import ImageReadError, read_image

    try:
        return read_image(path)
    except ImageReadError as err:
        raise _common.ExperimentError(str(err)) from None


def write_examples_csv(path, header, rows):
    return _common.write_csv_atomic(path, header, rows)


def run():
    from gone import labeling

    if not FLAGS.output_dir:
        raise _common.ExperimentError("--output_dir (the experiment's output folder) is required")
    if FLAGS.examples < 1:
        raise _common.ExperimentError("--examples must be >= 1")
    out = pathlib.Path(FLAGS.output_dir)
    records, info = make_table.load_records(out)
    paths = result_paths(out)
    chosen = {label: [] for label in labeling.LABELS}
    for rid, entry in votes_by_result(records).items():
        if rid not in paths:
            continue
        label = labeling.majority_label(list(entry["votes"].values()))
        share = list(entry["votes"].values()).count(label) / len(entry["votes"])
        chosen[label].append((-share, rid, entry))
    panels, rows = [], []
    for label in labeling.LABELS:
        picked = sorted(chosen[label], key=lambda t: (t[0], t[1]))[:FLAGS.examples]
        panels.append([_load(paths[rid][0]) for _, rid, _ in picked]
                      + [None] * (FLAGS.examples - len(picked)))
        for neg_share, rid, entry in picked:
            rows.append({"label": label, "result_id": rid, "image": entry["image"],
                         "column": entry["column"], "agreement": -neg_share,
                         "path": paths[rid][0].relative_to(out.resolve()).as_posix()})
    suptitle = "Figure 3: examples of each label"
    if info.get("random_weights"):
        suptitle += f" [{_common.RANDOM_WEIGHTS_BANNER}]"
    figure = _common.figure_grid(out / _common.FIG3_PNG, panels,
                                 [f"example {i + 1}" for i in range(FLAGS.examples)],
                                 [f"{label}" for label in labeling.LABELS], suptitle)
    table = write_examples_csv(out / _common.FIG3_CSV,
                               ("label", "result_id", "image", "column", "agreement", "path"),
                               rows)
    for label in labeling.LABELS:
        print(f"{label}: {len(chosen[label])} result(s), {min(len(chosen[label]), FLAGS.examples)}"
              " shown")
    return {"figure": figure, "examples": table}


def main(argv):
    return _common.run_main(run, argv)


if __name__ == "__main__":
    app.run(main)
