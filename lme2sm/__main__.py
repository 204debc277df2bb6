"""``python -m lme2sm``: the same command line as the ``lme2sm`` script."""

import sys

from lme2sm.cli import main

sys.exit(main())
