"""Figure 7: error samples, grouped by the error kinds the raters tagged in `gone label`.

Command (after labeling with `gone label` and `gone label OUTPUT_DIR --export`):

    python experiments/fig7_error_samples.py --output_dir outputs/table2_crop_strategy \
        [--examples 3] [--sheets ...] [--key ...]

The error kinds (tags; keys 5-8 in the app): limbs left (`limbs`), shadows left (`shadows`),
held object left (`held_objects`), infill that looks like a person (`person_infill`). For each,
the results most raters tagged with it (then the worse majority label, then result id), up to
--examples of them, each shown as original | result. Writes
<output_dir>/figure7_error_samples.png (one row per tag) and figure7_error_samples.csv.

Expected result: a 4-row figure; a tag nobody set shows an empty row.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _common  # noqa: E402
import fig3_label_examples as fig3  # noqa: E402  (also defines --examples)
import make_table  # noqa: E402
from absl import app  # noqa: E402

FLAGS = _common.FLAGS


def run():
    from gone import labeling
    from gone.labeling.app import TAG_TITLES, TAGS

    if not FLAGS.output_dir:
        raise _common.ExperimentError("--output_dir (the experiment's output folder) is required")
    if FLAGS.examples < 1:
        raise _common.ExperimentError("--examples must be >= 1")
    out = pathlib.Path(FLAGS.output_dir)
    records, info = make_table.load_records(out)
    paths = fig3.result_paths(out)
    by = fig3.votes_by_result(records)
    unknown = sorted({t for e in by.values() for t in e["tags"]} - set(TAGS))
    if unknown:
        print(f"note: tags not in {', '.join(TAGS)} are ignored: {', '.join(unknown[:5])}")
    panels, rows, counts = [], [], {}
    for tag in TAGS:
        tagged = [(e["tags"][tag], rid, e) for rid, e in by.items()
                  if e["tags"][tag] and rid in paths]
        counts[tag] = len(tagged)

        def order(t):
            worse = labeling.LABELS.index(labeling.majority_label(list(t[2]["votes"].values())))
            return (-t[0], -worse, t[1])

        picked = sorted(tagged, key=order)[:FLAGS.examples]
        row = []
        for n, rid, entry in picked:
            result, original = paths[rid]
            row += [fig3._load(original) if original else None, fig3._load(result)]
            rows.append({"tag": tag, "result_id": rid, "image": entry["image"],
                         "column": entry["column"], "raters_tagging": n,
                         "majority_label": labeling.majority_label(list(entry["votes"].values())),
                         "path": result.relative_to(out.resolve()).as_posix()})
        panels.append(row + [None] * (2 * FLAGS.examples - len(row)))
    suptitle = "Figure 7: error samples by kind"
    if info.get("random_weights"):
        suptitle += f" [{_common.RANDOM_WEIGHTS_BANNER}]"
    titles = [t for i in range(FLAGS.examples) for t in (f"original {i + 1}", f"result {i + 1}")]
    figure = _common.figure_grid(out / _common.FIG7_PNG, panels, titles,
                                 [TAG_TITLES[t] for t in TAGS], suptitle)
    table = fig3.write_examples_csv(
        out / _common.FIG7_CSV,
        ("tag", "result_id", "image", "column", "raters_tagging", "majority_label", "path"), rows)
    for tag in TAGS:
        print(f"{TAG_TITLES[tag]}: {counts[tag]} result(s) tagged, "
              f"{min(counts[tag], FLAGS.examples)} shown")
    return {"figure": figure, "examples": table}


def main(argv):
    return _common.run_main(run, argv)


if __name__ == "__main__":
    app.run(main)
