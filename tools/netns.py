"""Run a command in a private network namespace (Linux, as root: ``unshare -n``), loopback up.

Ray's core processes listen on every interface (notebook 12b lists them). Where the machine
allows it (CI runs as root), the tests execute such notebooks inside a network namespace of their
own: only ``lo`` exists there, so nothing they open is reachable from outside, and the notebook's
servers and load generators still talk to each other over 127.0.0.1.
"""

from __future__ import annotations

import functools
import shlex
import shutil
import subprocess
import sys

#: Notebooks that the tests run in a private network namespace where one is available (and that
#: nbval then leaves to the papermill test, which can start a process inside the namespace).
ISOLATED_NOTEBOOKS = frozenset({"12b_autoscale_ray_serve.ipynb"})

#: Python that brings the loopback interface up (a fresh namespace has it down), without `ip`:
#: SIOCGIFFLAGS / SIOCSIFFLAGS on "lo", setting IFF_UP.
LOOPBACK_UP = ("import fcntl, socket, struct; s = socket.socket(); "
               "flags = struct.unpack('16sh', fcntl.ioctl(s, 0x8913, struct.pack('16sh', b'lo', 0)))[1]; "
               "fcntl.ioctl(s, 0x8914, struct.pack('16sh', b'lo', flags | 1))")


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """True where ``unshare -n`` works here (Linux, root or the user-namespace equivalent)."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def command(argv: list[str], python: str = sys.executable) -> list[str]:
    """``argv`` wrapped to run in a new network namespace, after loopback is brought up."""
    inner = f"{shlex.quote(python)} -c {shlex.quote(LOOPBACK_UP)} && exec {shlex.join(argv)}"
    return ["unshare", "-n", "sh", "-c", inner]
