from helpers import hardware

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni amx_int8 amx_bf16 avx512_bf16
"""
EPYC = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx2 fma
"""
GRAVITON = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp i8mm bf16
"""


def test_parse_intel_amd_and_arm():
    xeon = hardware.parse_cpu(XEON, "x86_64")
    assert xeon["model"] == "Intel(R) Xeon(R) Platinum 8480+" and xeon["int8_dot_product"]
    assert {"avx2", "avx512f", "avx512_vnni", "amx_int8"} <= set(xeon["features"])
    epyc = hardware.parse_cpu(EPYC, "x86_64")
    assert epyc["features"] == ["avx2", "fma"] and not epyc["int8_dot_product"]
    arm = hardware.parse_cpu(GRAVITON, "aarch64")
    assert arm["model"] == "unknown CPU" and arm["int8_dot_product"]
    assert {"asimd", "asimddp", "i8mm", "bf16"} <= set(arm["features"])


def test_describe_names_the_features():
    line = hardware.describe(hardware.parse_cpu(XEON, "x86_64"))
    assert line.startswith("Intel(R) Xeon(R) Platinum 8480+ · x86_64")
    assert "AVX-512 VNNI" in line and "AMX-INT8" in line
    assert "no SIMD features" in hardware.describe(hardware.parse_cpu("model name: X\n", "x86_64"))


def test_this_machine_is_described():
    info = hardware.cpu_info()
    assert info["logical_cpus"] >= 1 and info["machine"]
    assert set(info) == {"model", "machine", "logical_cpus", "features", "int8_dot_product"}
