"""Did an energyd that a test started end cleanly? The one check every suite shares.

An energyd (or any sanitized binary) ends cleanly when its exit status is an expected one and no
sanitizer reported anything: neither on its stderr (a log file the test kept) nor in a report
file named after its pid under $ENERGY_SANITIZER_LOG_DIR (test.sh points ASAN_OPTIONS and
UBSAN_OPTIONS log_path there for each suite, so that processes whose stderr nobody reads are
checked too).

    from runner.energyd_check import assert_clean          # tests/ on sys.path
    assert_clean("energyd", proc.returncode, log_path, pid=proc.pid)

As a command, for a daemon started by something else (the Jupyter extension's embedded one):

    python3 tests/runner/energyd_check.py LOG     exit 1 if LOG holds a sanitizer report or a
                                                   start of energyd without its "stopping on"
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from junit_summary import SANITIZER_REPORT  # noqa: E402  (one definition of a report)


def sanitizer_files(pid: int | None) -> list[Path]:
    """Report files of this pid in the suite's sanitizer log directory (asan.PID, ubsan.PID)."""
    directory = os.environ.get("ENERGY_SANITIZER_LOG_DIR")
    if pid is None or not directory or not os.path.isdir(directory):
        return []
    return sorted(p for p in Path(directory).iterdir() if p.name.endswith(f".{pid}"))


def _read(path: Path | str | None) -> str:
    try:
        return Path(path).read_text(errors="replace") if path else ""
    except OSError:
        return ""


def _status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited {returncode}"


def problems(returncode: int | None, log_path=None, pid: int | None = None,
             ok_codes=(0,)) -> list[str]:
    """What went wrong, or [] when the process ended cleanly."""
    found = []
    if returncode is None:
        found.append("still running")
    elif returncode not in ok_codes:
        found.append(_status(returncode))
    m = SANITIZER_REPORT.search(_read(log_path))
    if m:
        found.append(f"sanitizer report in {log_path}: {m.group(0)}")
    for f in sanitizer_files(pid):
        m = SANITIZER_REPORT.search(_read(f))
        found.append(f"sanitizer report {f}" + (f": {m.group(0)}" if m else ""))
    return found


def assert_clean(what: str, returncode: int | None, log_path=None, pid: int | None = None,
                 ok_codes=(0,)) -> None:
    found = problems(returncode, log_path, pid, ok_codes)
    if found:
        details = [_read(log_path)[-4000:]] + [_read(f)[:4000] for f in sanitizer_files(pid)]
        raise AssertionError(f"{what} (pid {pid}) did not end cleanly: {'; '.join(found)}\n"
                             + "\n".join(d for d in details if d))


def log_problems(log_path, killed_on_purpose: int = 0) -> list[str]:
    """For a daemon whose exit status we cannot see: a report in its log, or a start of energyd
    ('sampling N channel(s)') that has no 'stopping on SIGTERM/SIGINT' after it (a crash, or a
    restart after one), unless a test said it killed that many on purpose."""
    if not os.path.isfile(log_path):
        return [f"{log_path}: no log (energyd never started?)"]
    text = _read(log_path)
    found = []
    m = SANITIZER_REPORT.search(text)
    if m:
        found.append(f"sanitizer report in {log_path}: {m.group(0)}")
    starts, stops = text.count("channel(s) every"), text.count("stopping on SIG")
    if starts != stops + killed_on_purpose:
        found.append(f"{log_path}: energyd started {starts} time(s) but stopped cleanly {stops}"
                     + (f" and was killed on purpose {killed_on_purpose}"
                        if killed_on_purpose else ""))
    return found


def killed_count(path) -> int:
    """The pids a test wrote (one a line) to say it killed them on purpose."""
    try:
        return sum(1 for line in _read(path).splitlines() if line.strip())
    except OSError:
        return 0


if __name__ == "__main__":
    # energyd_check.py [--killed-on-purpose FILE] LOG...
    args = sys.argv[1:]
    killed = 0
    if args[:1] == ["--killed-on-purpose"] and len(args) >= 2:
        killed = killed_count(args[1]) if os.path.exists(args[1]) else 0
        args = args[2:]
    issues = [p for log in args for p in log_problems(log, killed)]
    for p in issues:
        print(f"energyd_check: {p}", file=sys.stderr)
    sys.exit(1 if issues or not args else 0)
