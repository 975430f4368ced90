"""``python -m gone ...`` runs the command line (see gone.cli)."""
import sys

from gone.cli import main

sys.exit(main())
