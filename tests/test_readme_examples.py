"""The README's examples of the sections that name a runnable example run as
written, each in a fresh interpreter in an empty directory."""

import os
import re
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _python_blocks(section):
    """The ```python blocks of a README section (## heading to the next)."""
    text = open(README).read()
    match = re.search(r"^## %s\n(.*?)(?=^## )" % re.escape(section), text, re.S | re.M)
    assert match, "README has no section %r" % section
    return re.findall(r"```python\n(.*?)```", match.group(1), re.S)


@pytest.mark.parametrize("section, expected", [
    ("Deploying", r"\['(yes|no)'"),
    ("Large data", r"'accuracy': 0\.9"),
])
def test_readme_example_runs(section, expected, tmp_path):
    blocks = _python_blocks(section)
    assert len(blocks) == 1
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(README)))
    out = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(expected, out.stdout), out.stdout
