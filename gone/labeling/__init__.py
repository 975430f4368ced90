"""The blind labeling tool (the study's human ratings): everything apart from the product.

- ``gone.labeling.sheets``: the blind labeling sheet and its private key; filled sheets read back.
- ``gone.labeling.agreement``: the paper's count tables and the raters' agreement (Fleiss' kappa).
- ``gone.labeling.app``: ``gone label``, the web app (sqlite3 store, export, Flask routes; its page
  is ``static/label.html``).

The sheet and table functions are re-exported here: ``from gone import labeling;
labeling.write_labeling_sheet(...)``.
"""
from gone.labeling.agreement import (fleiss_kappa, per_label_kappa, bootstrap_kappa_interval, LabelTable, majority_label, make_table)  # noqa: F401
from gone.labeling.sheets import (LABELS, SHEET_COLUMNS, KEY_COLUMNS, LabelingError, LabeledResult, write_labeling_sheet, decode_text, read_text_any, CsvRow, read_csv_rows, read_key, normalize_label, read_labeling_sheets)  # noqa: F401
