"""``python -m ygg``: the ``ygg`` command."""

import sys

from ygg.cli import main

sys.exit(main())
