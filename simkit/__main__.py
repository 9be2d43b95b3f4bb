"""``python -m simkit``: the same command line as the ``simkit`` script."""

import sys

from simkit.cli import main

sys.exit(main())
