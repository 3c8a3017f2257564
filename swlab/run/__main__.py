"""``python -m swlab.run``: the lab's batch runner (scripts/run-lab)."""

import sys

from swlab.run.cli import main

sys.exit(main())
