"""`python -m coaching`: the Coachloop command line (see coaching/cli.py)."""

import sys

from coaching.cli import main

if __name__ == "__main__":
    sys.exit(main())
