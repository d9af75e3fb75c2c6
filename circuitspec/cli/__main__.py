"""``python -m circuitspec.cli``: the same as the ``circuitspec`` command."""

import sys

from circuitspec.cli import main

sys.exit(main())
