"""Write constraints.txt from the running environment (`make lock` runs it with .venv's Python).

    .venv/bin/python scripts/lock.py

Pins every installed distribution (`pip freeze`, local labels such as +cpu dropped) and keeps the file's last
section: the pins for the oldest Pythons vitlib supports, each line carrying a marker like
``python_full_version < "3.11.5"``. A frozen pin of the same package gets the opposite marker, so that exactly one
line applies on every Python (tests/test_install.py resolves the lock for each supported version).
"""
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
HEADER = """\
# The versions that produced the committed notebook outputs (Linux x86-64, Python 3.11), written by
# make lock from .venv; every install in the Makefile is held to them. Local labels (+cpu) dropped.
"""
OLDER = "# For older Pythons"  # how the kept section starts
OPPOSITE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def name_of(pin):
    return re.split(r"[=;<>! ]", pin, maxsplit=1)[0].lower().replace("_", "-")


def locked_versions(text, environment=None):
    """{normalised name: version} that the lock holds for a Python (``environment``: marker values such as
    ``{"python_full_version": "3.11.2"}``; default: the running one)."""
    versions = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                versions[name_of(requirement.name)] = str(requirement.specifier).removeprefix("==")
    return versions


def lock(frozen, old_text):
    """The new file's text from ``pip freeze`` lines and the old file's text."""
    lines = old_text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(OLDER)), len(lines))
    kept = lines[start:]
    markers = {}
    for line in kept:
        if line.startswith("#"):
            continue
        match = re.fullmatch(r'(\S+)==\S+\s*;\s*python_full_version\s*(<=|<|>=|>)\s*"([0-9.]+)"', line.strip())
        if not match:
            raise ValueError(f"constraints.txt: {line!r} below {OLDER!r}: write it as "
                             'name==version ; python_full_version < "3.x.y".')
        markers[name_of(match[1])] = f'python_full_version {OPPOSITE[match[2]]} "{match[3]}"'
    pins = []
    for line in frozen:
        if not line or line.startswith("#"):
            continue
        pin = re.sub(r"\+[a-z0-9.]*$", "", line.strip())
        pins.append(f"{pin} ; {markers[name_of(pin)]}" if name_of(pin) in markers else pin)
    return HEADER + "\n".join(pins + kept) + "\n"


def main():
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], check=True,
                            capture_output=True, text=True).stdout.splitlines()
    path = ROOT / "constraints.txt"
    path.write_text(lock(frozen, path.read_text()))


if __name__ == "__main__":
    main()
