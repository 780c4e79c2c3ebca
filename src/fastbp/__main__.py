"""``python -m fastbp``: the command line (see ``fastbp._cli``); run bare, the demo."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
