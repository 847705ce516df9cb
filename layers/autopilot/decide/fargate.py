"""The Fargate task size table and rounding to it (aws-facts.md section 4).

CPU units: memory MiB allowed
  256: 512, 1024, 2048 . 512: 1024-4096 in 1024 steps . 1024: 2048-8192 in 1024 steps .
  2048: 4096-16384 in 1024 steps . 4096: 8192-30720 in 1024 steps .
  8192: 16384-61440 in 4096 steps . 16384: 32768-122880 in 8192 steps.

A memory increase that leaves the CPU's range needs the next CPU size too; CPU never goes down.
"""

from __future__ import annotations

import math
import re

FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
# Every valid (cpu, memory) pair, ordered by memory, then CPU: the first fit is the minimal one.
VALID_SIZES: tuple[tuple[int, int], ...] = tuple(sorted(
    ((cpu, mem) for cpu, mems in FARGATE_SIZES.items() for mem in mems), key=lambda p: (p[1], p[0])))
MAX_MEMORY = max(m for _, m in VALID_SIZES)
MAX_CPU = max(FARGATE_SIZES)


class NoFargateSize(ValueError):
    """No valid Fargate size satisfies the request."""


def is_valid(cpu: int, memory: int) -> bool:
    return memory in FARGATE_SIZES.get(cpu, ())


def round_up(cpu: int, memory: int) -> tuple[int, int]:
    """The smallest valid (cpu, memory) with memory >= ``memory`` and CPU >= ``cpu``.

    Memory is minimised first (it is what OOM right-sizing asks for), then CPU: 256 CPU with 3000 MiB
    becomes (512, 3072); 1024 CPU with 9000 MiB becomes (2048, 9216).
    """
    for size_cpu, size_mem in VALID_SIZES:
        if size_mem >= memory and size_cpu >= cpu:
            return size_cpu, size_mem
    raise NoFargateSize(f"no Fargate size has {memory} MiB or more with at least {cpu} CPU units")


def round_down(cpu: int, memory: int) -> tuple[int, int] | None:
    """The largest valid memory <= ``memory`` with CPU >= ``cpu`` (smallest such CPU); None if there is none."""
    best: tuple[int, int] | None = None
    for size_cpu, size_mem in VALID_SIZES:
        if size_mem > memory:
            break
        if size_cpu >= cpu and (best is None or size_mem > best[1]):
            best = (size_cpu, size_mem)
    return best


_UNITS = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>vcpu|gb|mb|mib|gib)?\s*$", re.IGNORECASE)


def parse_cpu(value: str | int | None) -> int | None:
    """Task CPU as registered: ``"256"`` or ``"1 vCPU"`` / ``".25 vcpu"`` -> CPU units."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    match = _UNITS.match(value if not value.strip().startswith(".") else "0" + value.strip())
    if match is None:
        return None
    number = float(match.group("n"))
    return math.ceil(number * 1024) if (match.group("unit") or "").lower() == "vcpu" else math.ceil(number)


def parse_memory(value: str | int | None) -> int | None:
    """Task memory as registered: ``"2048"`` or ``"2 GB"`` -> MiB."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    match = _UNITS.match(value)
    if match is None:
        return None
    number = float(match.group("n"))
    return math.ceil(number * 1024) if (match.group("unit") or "").lower() in ("gb", "gib") else math.ceil(number)
