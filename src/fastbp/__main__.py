"""``python -m fastbp``: the demo (see ``fastbp._demo``)."""

from ._demo import run

if __name__ == "__main__":
    run()
