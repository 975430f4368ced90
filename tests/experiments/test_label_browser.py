"""Real browser (Debian's chromium, driven by Playwright's Python API): two raters label a smoke
experiment with the keyboard at the same time, export, and make_table.py counts what they typed."""
import csv
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from gone import labeling
from gone.labeling import app as label_app

REPO = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GONE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
KEYS = {"good": "1", "okay": "o", "striped": "3", "solid": "x"}


def _browser_or_skip():
    if not shutil.which(CHROMIUM) and not os.path.isfile(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright   # a test dependency: missing = broken setup

    return sync_playwright


def test_two_raters_label_with_the_keyboard_export_and_make_table(experiment_output, tmp_path, label_server):
    sync_playwright = _browser_or_skip()
    smoke_output = experiment_output     # a real run of experiments/table2_crop_strategy.py
    state = label_app.Labeler([smoke_output], warn=lambda m: None)
    column_of = {rid: cols[0][1] for rid, cols in
                 labeling.read_key(smoke_output / "private" / "labeling_key.csv").items()}
    n = len(state.items)
    assert n == 8                        # 2 scenes x box / mask / dilated / traces
    plans = {"alice": [labeling.LABELS[(3 * i) % 4] for i in range(n)],
             "bob": [labeling.LABELS[(i // 2) % 4] for i in range(n)]}
    typed = {r: {} for r in plans}       # rater -> result_id -> label
    proc, url = label_server(smoke_output, tmp_path / "server.log")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            pages = {}
            for rater in plans:
                ctx = browser.new_context()        # own cookies and storage: a fresh profile
                page = ctx.new_page()
                page.goto(url + "/")
                page.fill("#name", rater.title())
                page.press("#name", "Enter")
                page.wait_for_selector("body[data-state=ready]")
                pages[rater] = page

            def current(page):
                src = page.get_attribute("#result", "src")
                return state.items[src.split("/")[2]].result_id

            def press(rater, key, expect_done):
                page = pages[rater]
                page.keyboard.press(key)
                page.wait_for_function(
                    "n => document.getElementById('prog').textContent.startsWith(n + ' done')",
                    arg=expect_done)
                page.wait_for_selector("body[data-state=ready], body[data-state=done]")

            page = pages["bob"]                    # the original on demand (v), beside it
            assert not page.is_visible("#orig")
            page.keyboard.press("v")
            assert page.is_visible("#orig")
            page.wait_for_function("document.getElementById('orig').naturalWidth === 96")
            for step in range(n):                  # the two raters alternate, key by key
                for rater, plan in plans.items():
                    rid = current(pages[rater])
                    if step == 2 and rater == "alice":
                        press(rater, "s", len(typed[rater]) + 1)   # a slip ...
                        press(rater, "u", len(typed[rater]))       # ... undone: same result back
                        assert current(pages[rater]) == rid
                        pages[rater].keyboard.press("5")          # tag: limbs left
                    press(rater, KEYS[plan[step]], len(typed[rater]) + 1)
                    typed[rater][rid] = plan[step]
            for page in pages.values():
                assert page.text_content("#prog") == f"{n} done / 0 left"
                assert page.is_visible("#done")
            browser.close()
    finally:
        proc.kill()
        proc.wait(30)
    assert subprocess.run([sys.executable, "-m", "gone", "label", str(smoke_output), "--export"],
                          cwd=REPO, capture_output=True, text=True).returncode == 0
    rows = {r["result_id"]: r for r in csv.DictReader(open(smoke_output / "labels" / "alice.csv"))}
    tagged = [rid for rid, r in rows.items() if r["tags"]]
    assert len(tagged) == 1 and rows[tagged[0]]["tags"] == "limbs"
    run = subprocess.run([sys.executable, "experiments/make_table.py",
                          f"--output_dir={smoke_output}"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    table = {row[0]: row[1:] for row in csv.reader(open(smoke_output / "table.csv"))}
    columns = table["label"]
    for rater, labels in typed.items():
        for label in labeling.LABELS:
            expect = [sum(1 for rid, lab in labels.items() if lab == label and column_of[rid] == c)
                      for c in columns]
            assert [int(x) for x in table[f"{rater}:{label}"]] == expect, (rater, label)
    # Majority vote (ties to the worse label) of what was typed.
    for label in labeling.LABELS:
        expect = [0] * len(columns)
        for rid in typed["alice"]:
            votes = [typed["alice"][rid], typed["bob"][rid]]
            worst = max(votes, key=labeling.LABELS.index) if votes[0] != votes[1] else votes[0]
            if worst == label:
                expect[columns.index(column_of[rid])] += 1
        assert [int(x) for x in table[label]] == expect, label
