"""tools.netns: a command in a private network namespace sees only a working loopback."""

import subprocess
import sys

import pytest

from tools import netns

PROBE = ("import socket; print(sorted(l.split(':')[0].strip() for l in open('/proc/self/net/dev')"
         ".readlines()[2:])); s = socket.create_server(('127.0.0.1', 0)); "
         "c = socket.create_connection(s.getsockname()); print('loopback works')")


def test_command_wraps_argv_after_bringing_loopback_up():
    wrapped = netns.command(["python", "-c", "print('a b')"], python="/usr/bin/python3")
    assert wrapped[:4] == ["unshare", "-n", "sh", "-c"]
    assert wrapped[4].startswith("/usr/bin/python3 -c ") and "0x8914" in wrapped[4]
    assert wrapped[4].endswith("&& exec python -c 'print('\"'\"'a b'\"'\"')'")


def test_only_the_ray_notebook_is_isolated():
    assert netns.ISOLATED_NOTEBOOKS == {"12b_autoscale_ray_serve.ipynb"}


@pytest.mark.skipif(not netns.available(), reason="unshare -n is not available here (needs root on Linux)")
def test_inside_the_namespace_only_loopback_exists_and_works():
    done = subprocess.run(netns.command([sys.executable, "-c", PROBE]), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["['lo']", "loopback works"]


@pytest.mark.skipif(not netns.available(), reason="unshare -n is not available here (needs root on Linux)")
def test_without_loopback_up_nothing_connects():
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0          # the probe's connection fails: the namespace's lo is down
