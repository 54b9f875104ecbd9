"""Real-time slots for the test harness's threads.

The hardware and kernel counters the emulators stand for (RAPL, /proc) are never late: the
kernel updates them whatever user processes do. A Python driver thread on a machine loaded by
other work (scripts/stress-test.sh, a shared CI machine) can be, by hundreds of milliseconds,
and then moves its counters in one jump, which no real sensor does. Worse, a driver shares the
interpreter lock with the test's own thread: when that thread is preempted while it holds the
lock, the driver stops in the middle of a step, and a reader sees some files of the new step
and some of the old for as long.

So, where allowed (root), the drivers ask for SCHED_FIFO priority 2 for their own thread, and
the test process's main thread for priority 1 with SCHED_RESET_ON_FORK, so that what it starts
(energyd, the CLI) runs at normal priority. All of them sleep between steps or requests of a
few milliseconds and take little from the rest; energyd meets the load as it would anywhere."""

import os

DRIVER_PRIORITY = 2
HARNESS_PRIORITY = 1


def _fifo(priority: int, flags: int = 0) -> bool:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | flags, os.sched_param(priority))
        return True
    except (OSError, AttributeError):
        return False


def keep_time() -> bool:
    """A real-time slot for the calling driver thread; False where not allowed."""
    return _fifo(DRIVER_PRIORITY)


def harness() -> bool:
    """A real-time slot for the test process's calling thread (below the drivers'); the
    processes it starts run at normal priority. False where not allowed."""
    return _fifo(HARNESS_PRIORITY, getattr(os, "SCHED_RESET_ON_FORK", 0))
