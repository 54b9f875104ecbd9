"""energyd_check on literal inputs: exit statuses, reports in logs and in log_path files."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from runner.energyd_check import assert_clean, problems  # noqa: E402

CHECK = ROOT / "tests" / "runner" / "energyd_check.py"
START = "energyd: info: sampling 2 channel(s) every 0.100 s; host total = ...\n"
STOP = "energyd: info: stopping on SIGTERM\n"
ASAN = "==42==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010\n"
LEAK = "==42==ERROR: LeakSanitizer: detected memory leaks\n"
UBSAN = "src/energyd/history.c:80:12: runtime error: signed integer overflow\n"


def test_a_clean_stop(tmp_path, monkeypatch):
    log = tmp_path / "energyd.log"
    log.write_text(START + STOP)
    monkeypatch.setenv("ENERGY_SANITIZER_LOG_DIR", str(tmp_path))
    assert problems(0, log, pid=42) == []
    assert_clean("energyd", 0, log, pid=42)


@pytest.mark.parametrize("rc,expected", [(1, "exited 1"), (-11, "killed by SIGSEGV"),
                                         (None, "still running")])
def test_an_exit_status(tmp_path, rc, expected):
    with pytest.raises(AssertionError, match=expected):
        assert_clean("energyd", rc, None, pid=42)


@pytest.mark.parametrize("report,match", [(ASAN, "ERROR: AddressSanitizer"),
                                          (LEAK, "ERROR: LeakSanitizer"),
                                          (UBSAN, "runtime error:")])
def test_a_report_on_stderr(tmp_path, report, match):
    log = tmp_path / "energyd.log"
    log.write_text(START + report + STOP)
    assert problems(0, log, pid=42) == [f"sanitizer report in {log}: {match}"]


def test_a_report_file_of_that_pid_only(tmp_path, monkeypatch):
    monkeypatch.setenv("ENERGY_SANITIZER_LOG_DIR", str(tmp_path))
    (tmp_path / "asan.42").write_text(LEAK)
    (tmp_path / "asan.4242").write_text(ASAN)  # another process: not this one's
    found = problems(0, None, pid=42)
    assert found == [f"sanitizer report {tmp_path / 'asan.42'}: ERROR: LeakSanitizer"]
    assert problems(0, None, pid=7) == []


@pytest.mark.parametrize("text,ok", [(START + STOP, True), (START + STOP + START + STOP, True),
                                     (START, False),  # still running, or died without a word
                                     (START + START + STOP, False),  # died, was restarted
                                     (START + ASAN + STOP, False), (None, False)])
def test_the_log_of_a_daemon_we_did_not_start(tmp_path, text, ok):
    log = tmp_path / "energyd.log"
    if text is not None:
        log.write_text(text)
    r = subprocess.run([sys.executable, str(CHECK), str(log)], capture_output=True, text=True)
    assert (r.returncode == 0) == ok, r.stderr


def test_a_kill_on_purpose_is_counted_only_as_often_as_said(tmp_path):
    """Two starts, one clean stop: clean only when a test said it killed one on purpose."""
    log = tmp_path / "energyd.log"
    log.write_text(START + START + STOP)
    killed = tmp_path / "killed-on-purpose"

    def check():
        return subprocess.run([sys.executable, str(CHECK), "--killed-on-purpose", str(killed),
                               str(log)], capture_output=True, text=True).returncode

    assert check() == 1  # no file: the second start ended unseen
    killed.write_text("4242\n")
    assert check() == 0
    killed.write_text("4242\n4343\n")
    assert check() == 1  # said twice, happened once
