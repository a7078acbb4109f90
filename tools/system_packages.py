"""Fetch the programs the notebooks take from Debian packages (and Chromium, which the site test
opens the course website in), and install the pinned packages of
``requirements-nodeps.txt`` without their declared dependencies (see helpers/sysdeps.py).

    python tools/system_packages.py          # part of the README's test command

Prints where each program is. Where one cannot be fetched (no apt, or not root on a fresh
machine) it says how to get it and goes on: the notebooks that need it then fail with the same
message. ``--require`` makes that an error (exit status 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import sysdeps  # noqa: E402


def main() -> int:
    failed = 0
    installed = sysdeps.install_nodeps()
    print(f"requirements-nodeps.txt: {'installed ' + ', '.join(installed) if installed else 'up to date'}")
    for program in sysdeps.PROGRAMS:
        try:
            path = sysdeps.ensure(program)
            print(f"{program}: {path} ({sysdeps.version(path)})")
        except sysdeps.MissingProgram as error:
            print(f"{program}: {error}", file=sys.stderr)
            failed += 1
    return 1 if failed and "--require" in sys.argv[1:] else 0


if __name__ == "__main__":
    sys.exit(main())
