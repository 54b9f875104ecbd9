"""The server does the arithmetic, the Python package formats (issue: one layer per room): no
joules ÷ seconds, no watts × seconds, no mean or standard deviation of its own anywhere in
python/jupyter_energy. Mean power is energyd's ``watts``, idle removal its ``idle_watts=``,
statistics over runs its ``/runs``.

Code is searched, not prose: comments and plain strings are left out, f-strings are kept (a
division inside ``f"{j / s.duration:.2f}"`` is code). Each pattern is first shown to catch the
lines this package used to have, so that the search is not one that cannot fail.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "python" / "jupyter_energy"

# name -> (pattern, a line of the package before the server did the arithmetic)
FORBIDDEN = {
    "÷ duration": (r"/\s*[\w.\[\]'\"()]*duration\b", "line += f', mean {s.host_joules / s.duration:.2f} W'"),
    "÷ seconds": (r"/\s*[\w.\[\]'\"()]*seconds\b", "w = joules / e['seconds']"),
    "÷ (t1 - t0)": (r"/\s*\(\s*[\w.]+\s*-\s*[\w.]+\s*\)", "watts = j / (t1 - t0)"),
    "× duration": (r"\*\s*[\w.\[\]'\"()]*duration\b", "s.energy[ch] -= watts[ch] * s.duration"),
    "× seconds": (r"\*\s*[\w.\[\]'\"()]*seconds\b", "j = w * interval_seconds"),
    "duration ×": (r"\bduration\s*\*", "j = s.duration * w"),
    "watts ×": (r"watts(\[[^\]]*\])?\s*\*(?!\*)", "s.host_joules -= watts['host'] * d"),
    "statistics module": (r"\bstatistics\s*\.", "m = statistics.mean(values)"),
    "stdev": (r"\bp?stdev\b", "sd = stdev(values) if len(values) > 1 else 0.0"),
    "variance": (r"\bp?variance\b", "v = variance(xs)"),
    "sqrt": (r"\bsqrt\b", "sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))"),
    "mean by sum ÷ len": (r"sum\([^)]*\)\s*/\s*len\(", "m = sum(xs) / len(xs)"),
    "numpy": (r"\b(numpy|np)\s*\.\s*(mean|std|var)\b", "np.std(xs, ddof=1)"),
}


def code_lines(path: Path):
    """(line number, code) of a Python file with its comments and plain strings blanked out,
    the rest as written (f-strings kept: up to 3.11 one token, from 3.12 several)."""
    text = path.read_text()
    lines = [list(line) for line in text.splitlines()]
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        plain_string = (tok.type == tokenize.STRING
                        and not re.match(r"(?i)[rbu]*f", tok.string))
        if tok.type != tokenize.COMMENT and not plain_string:
            continue
        (r0, c0), (r1, c1) = tok.start, tok.end
        for r in range(r0, r1 + 1):
            row = lines[r - 1]
            start = c0 if r == r0 else 0
            end = c1 if r == r1 else len(row)
            row[start:end] = " " * (end - start)
    return [(n, "".join(row)) for n, row in enumerate(lines, 1) if "".join(row).strip()]


@pytest.mark.parametrize("name", list(FORBIDDEN))
def test_pattern_catches_the_old_code(name):
    pattern, old_line = FORBIDDEN[name]
    assert re.search(pattern, old_line), (name, old_line)


def test_the_search_sees_code_in_fstrings_and_skips_prose(tmp_path):
    f = tmp_path / "sample.py"
    f.write_text('"""Energy is watts * duration."""\n'
                 "# joules / seconds in a comment\n"
                 "x = f'{j / s.duration:.2f} W'\n")
    found = [n for n, code in code_lines(f)
             if any(re.search(p, code) for p, _ in FORBIDDEN.values())]
    assert found == [3]


def test_no_energy_arithmetic_in_the_python_package():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) >= 10 and PACKAGE / "meter.py" in files
    offences = []
    for path in files:
        for n, code in code_lines(path):
            for name, (pattern, _) in FORBIDDEN.items():
                if re.search(pattern, code):
                    offences.append(f"{path.relative_to(PACKAGE.parent)}:{n}: {name}: {code}")
    assert not offences, "\n".join(offences)
