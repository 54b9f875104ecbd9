"""Keeps an embedded energyd from outliving the Jupyter server that started it.

energyd started as root drops its privileges, and Linux clears a process's parent-death signal
when its credentials change, so PR_SET_PDEATHSIG on energyd itself does not survive the drop.
This small process sits between the server and energyd instead: it never changes credentials,
asks the kernel for SIGTERM when the server dies (even by SIGKILL), and then stops energyd.

    python -m jupyter_energy._reaper PARENT_PID ENERGYD [ARGS...]
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def main() -> int:
    parent, argv = int(sys.argv[1]), sys.argv[2:]
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the server died before the prctl took effect
        return 0
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)

    def stop(signum, _frame):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, stop)
    while True:
        try:
            code = child.wait()
            break
        except InterruptedError:
            continue
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
