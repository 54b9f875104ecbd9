"""A real-time slot for an emulator's driver thread.

The hardware and kernel counters the emulators stand for (RAPL, /proc) are never late: the
kernel updates them whatever user processes do. A Python driver thread on a machine loaded by
other work (scripts/stress-test.sh, a shared CI machine) can be, by hundreds of milliseconds,
and then moves its counters in one jump, which no real sensor does. Where allowed (root), the
driver asks for SCHED_FIFO priority 1 for its own thread: it sleeps between steps (a few
milliseconds each), so it takes little from the rest, and energyd itself keeps its normal
priority and meets the load as it would anywhere."""

import os


def keep_time() -> bool:
    """Ask for a real-time slot for the calling thread; False where not allowed."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        return True
    except (OSError, AttributeError):
        return False
