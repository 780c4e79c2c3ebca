"""Where training time goes: the engine's per-phase timers as a table.

Diagnosis only. ``FASTBP_PROFILE=1`` in the environment turns the timers on
when fastbp is imported and prints the table to stderr when Python exits;
from code::

    from fastbp import _engine, _profile
    _engine.set_profiling(True)
    model.fit(X, y)
    print(_profile.format_phase_times(_engine.phase_times(reset=True)))

Every thread's phases add up to the training calls' own time (less the
handing out of segments), so a thread's "barrier wait" is the time it waited
for the others.
"""

import atexit
import os
import sys

from . import _engine

__all__ = ["format_phase_times", "enable_from_environment"]


def format_phase_times(times):
    """A text table of ``_engine.phase_times()``: per phase and thread,
    milliseconds, microseconds per batch and the share of the calls' time."""
    n_threads = len(times["ns"])
    batches = max(times["batches"], 1)
    call_ns = max(times["call_ns"], 1)
    head = f"{'phase':<15}" + "".join(
        f"{f'thread {t}: ms':>16}{'us/batch':>10}{'%':>7}" for t in range(n_threads))
    lines = [f"fastbp phase times ({_engine.simd_level()} kernels): {times['calls']} calls, "
             f"{times['batches']} batches, {times['call_ns'] / 1e6:.1f} ms in the calls",
             head]
    for k, name in enumerate(times["phases"]):
        row = [times["ns"][t][k] for t in range(n_threads)]
        if not any(row):
            continue
        lines.append(f"{name:<15}" + "".join(
            f"{ns / 1e6:>16.2f}{ns / 1e3 / batches:>10.2f}{100 * ns / call_ns:>7.1f}"
            for ns in row))
    totals = [sum(times["ns"][t]) for t in range(n_threads)]
    lines.append(f"{'total':<15}" + "".join(
        f"{ns / 1e6:>16.2f}{ns / 1e3 / batches:>10.2f}{100 * ns / call_ns:>7.1f}"
        for ns in totals))
    return "\n".join(lines)


def _print_at_exit():
    times = _engine.phase_times()
    if times["calls"]:
        print(format_phase_times(times), file=sys.stderr)


def enable_from_environment():
    """``FASTBP_PROFILE=1``: time the phases from now on and print the table
    when Python exits."""
    if os.environ.get("FASTBP_PROFILE") == "1" and not _engine.set_profiling(True):
        atexit.register(_print_at_exit)
