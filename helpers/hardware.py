"""What CPU a measurement ran on, and which of its instruction-set features matter for speed.

Latency ratios are properties of the hardware as much as of the model: full-integer int8 kernels
gain from 8-bit dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX, Arm's dot product) and can
be *slower* than float32 on a CPU with AVX2 only. Every notebook that times something prints
:func:`describe`, and every results file records :func:`cpu_info` under ``"cpu"``.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path

#: Instruction-set features that change how fast int8, bf16 and float32 kernels run, by the
#: names Linux uses in /proc/cpuinfo (x86: flags, Arm: Features), with readable labels.
FEATURES = {
    "avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI", "avx512_bf16": "AVX-512 BF16", "amx_int8": "AMX-INT8",
    "amx_bf16": "AMX-BF16", "asimd": "NEON", "asimddp": "Arm dot product", "i8mm": "Arm I8MM",
    "bf16": "Arm BF16", "sve": "SVE",
}
#: Features with 8-bit integer dot-product instructions, which make int8 kernels fast.
INT8_DOT_PRODUCT = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def _linux_cpuinfo(text: str) -> tuple[str, set[str]]:
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, flags


def _macos_cpuinfo() -> tuple[str, set[str]]:
    def sysctl(name: str) -> str:
        try:
            return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True,
                                  timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    model = sysctl("machdep.cpu.brand_string")
    flags = {f.lower().replace(".", "_") for f in
             f"{sysctl('machdep.cpu.features')} {sysctl('machdep.cpu.leaf7_features')}".split()}
    if platform.machine() == "arm64":            # every Apple silicon chip has these
        flags |= {"asimd", "asimddp"}
        if sysctl("hw.optional.arm.FEAT_I8MM") == "1":
            flags.add("i8mm")
    return model, flags


def parse_cpu(text: str, machine: str = "") -> dict:
    """The ``cpu`` record from the text of ``/proc/cpuinfo`` (see :func:`cpu_info`)."""
    model, flags = _linux_cpuinfo(text)
    return _record(model, flags, machine)


def _record(model: str, flags: set[str], machine: str) -> dict:
    present = [name for name in FEATURES if name in flags]
    return {"model": model or "unknown CPU", "machine": machine or platform.machine(),
            "logical_cpus": os.cpu_count() or 1, "features": present,
            "int8_dot_product": any(name in flags for name in INT8_DOT_PRODUCT)}


@functools.cache
def cpu_info() -> dict:
    """Model name, architecture, logical CPUs and the speed-relevant features of this CPU.

    ``features`` lists the keys of :data:`FEATURES` that are present; ``int8_dot_product`` says
    whether int8 dot-product instructions (VNNI, AMX, Arm dot product) are available, the
    hardware condition under which full-integer int8 kernels beat float32.
    """
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        model, flags = _linux_cpuinfo(cpuinfo.read_text(errors="replace"))
    elif platform.system() == "Darwin":
        model, flags = _macos_cpuinfo()
    else:
        model, flags = platform.processor(), set()
    return _record(model, flags, platform.machine())


def describe(info: dict | None = None) -> str:
    """One line for a notebook: ``Intel(R) Xeon(R) ... · x86_64 · 2 logical CPUs · AVX2, ...``."""
    info = info or cpu_info()
    features = ", ".join(FEATURES[name] for name in info["features"]) or "no SIMD features listed"
    return (f"{info['model']} · {info['machine']} · {info['logical_cpus']} logical CPUs · "
            f"{features}")
