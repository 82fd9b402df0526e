"""softprompt.utils.cpu: the CPU's vendor, read from a bounded /proc/cpuinfo or the platform."""

from __future__ import annotations

import pytest

from softprompt.utils import cpu


@pytest.fixture(autouse=True)
def _fresh_cache():
    cpu.cpu_vendor.cache_clear()
    yield
    cpu.cpu_vendor.cache_clear()


def _cpuinfo(tmp_path, text: str):
    path = tmp_path / "cpuinfo"
    path.write_bytes(text.encode())
    return path


@pytest.mark.parametrize("vendor", ["GenuineIntel", "AuthenticAMD"])
def test_vendor_is_read_from_cpuinfo(monkeypatch, tmp_path, vendor):
    text = (
        f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: 6\n\nprocessor\t: 1\nvendor_id\t: {vendor}\n"
    )
    monkeypatch.setattr(cpu, "CPUINFO", _cpuinfo(tmp_path, text))
    assert cpu.cpu_vendor() == vendor


def test_an_arm_cpuinfo_names_no_vendor(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu, "CPUINFO", _cpuinfo(tmp_path, "processor\t: 0\nCPU implementer\t: 0x41\n"))
    assert cpu.cpu_vendor() == ""


def test_only_the_head_of_the_file_is_read(monkeypatch, tmp_path):
    """A vendor past the read limit is not seen: the read is bounded, whatever the file's size."""
    text = "x" * cpu.READ_LIMIT + "\nvendor_id\t: GenuineIntel\n"
    monkeypatch.setattr(cpu, "CPUINFO", _cpuinfo(tmp_path, text))
    assert cpu.cpu_vendor() == ""


def test_without_cpuinfo_the_platform_names_the_vendor(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu, "CPUINFO", tmp_path / "missing")
    monkeypatch.setattr(
        cpu.platform, "processor", lambda: "Intel64 Family 6 Model 85 Stepping 7, GenuineIntel"
    )
    assert cpu.cpu_vendor() == "GenuineIntel"
    cpu.cpu_vendor.cache_clear()
    monkeypatch.setattr(cpu.platform, "processor", lambda: "arm")
    assert cpu.cpu_vendor() == ""


def test_the_vendor_is_read_once_per_process(monkeypatch, tmp_path):
    path = _cpuinfo(tmp_path, "vendor_id\t: AuthenticAMD\n")
    monkeypatch.setattr(cpu, "CPUINFO", path)
    assert cpu.cpu_vendor() == "AuthenticAMD"
    path.write_bytes(b"vendor_id\t: GenuineIntel\n")
    assert cpu.cpu_vendor() == "AuthenticAMD"


@pytest.mark.parametrize(
    ("kind", "switch", "expected"),
    [
        (("AuthenticAMD", "AVX512"), None, True),
        (("GenuineIntel", "AVX512"), None, False),  # another vendor, same capability: not measured
        (("AuthenticAMD", "AVX2"), None, False),  # same vendor, another capability
        (("", "AVX512"), None, False),  # vendor unknown
        (("GenuineIntel", "AVX2"), "1", True),
        (("AuthenticAMD", "AVX512"), "0", False),
        (("AuthenticAMD", "AVX512"), "yes", True),  # neither "1" nor "0": the measured rule decides
    ],
)
def test_a_lever_is_on_only_on_the_kinds_it_was_measured_faster_on(monkeypatch, kind, switch, expected):
    monkeypatch.setattr(cpu, "cpu_vendor", lambda: kind[0])
    monkeypatch.setattr(cpu.torch.backends.cpu, "get_cpu_capability", lambda: kind[1])
    if switch is None:
        monkeypatch.delenv("SOFTPROMPT_TEST_LEVER", raising=False)
    else:
        monkeypatch.setenv("SOFTPROMPT_TEST_LEVER", switch)
    assert cpu.cpu_kind() == kind
    assert cpu.measured_default("SOFTPROMPT_TEST_LEVER", [("AuthenticAMD", "AVX512")]) is expected
