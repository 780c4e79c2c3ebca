"""Head-to-head: fastbp vs scikit-learn vs PyTorch (when installed) on this machine.

    python benchmarks/head_to_head.py [--memory] [--sparse] [--sweep] [--json FILE]

Same as ``fastbp bench``; see ``fastbp._bench`` for the options. For a fair
figure run it on an otherwise idle machine; ratios measured in one run are
what to compare.
"""

import sys

from fastbp._bench import main

if __name__ == "__main__":
    sys.exit(main())
