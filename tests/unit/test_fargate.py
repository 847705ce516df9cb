"""Fargate task sizes: the whole table, rounding up (minimal, valid, never below the request), parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autopilot.decide.fargate import (
    FARGATE_SIZES,
    MAX_MEMORY,
    VALID_SIZES,
    NoFargateSize,
    is_valid,
    parse_cpu,
    parse_memory,
    round_down,
    round_up,
)

# aws-facts.md section 4, written out independently of the module's table.
TABLE = {
    256: [512, 1024, 2048],
    512: [1024, 2048, 3072, 4096],
    1024: [2048, 3072, 4096, 5120, 6144, 7168, 8192],
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}


def test_table_matches_the_documented_sizes():
    assert {cpu: list(mems) for cpu, mems in FARGATE_SIZES.items()} == TABLE
    assert len(VALID_SIZES) == sum(len(v) for v in TABLE.values())


@pytest.mark.parametrize(("cpu", "memory"), [(c, m) for c, mems in TABLE.items() for m in mems])
def test_every_valid_size_rounds_to_itself(cpu, memory):
    assert is_valid(cpu, memory)
    assert round_up(cpu, memory) == (cpu, memory)


@pytest.mark.parametrize(("cpu", "memory", "expected"), [
    (256, 513, (256, 1024)),
    (256, 2049, (512, 3072)),  # 256 CPU tops out at 2048: the next CPU size is needed
    (256, 3000, (512, 3072)),
    (512, 4097, (1024, 5120)),
    (1024, 8193, (2048, 9216)),
    (1024, 9000, (2048, 9216)),
    (2048, 16385, (4096, 17408)),
    (4096, 30721, (8192, 32768)),
    (8192, 61441, (16384, 65536)),
    (16384, 122880, (16384, 122880)),
    (256, 1, (256, 512)),
    (4096, 512, (4096, 8192)),  # CPU never goes down: the smallest memory 4096 CPU allows
    (300, 512, (512, 1024)),  # an odd CPU value rounds up to a valid one
])
def test_round_up_examples(cpu, memory, expected):
    assert round_up(cpu, memory) == expected


def test_nothing_above_the_largest_size():
    with pytest.raises(NoFargateSize):
        round_up(256, MAX_MEMORY + 1)
    with pytest.raises(NoFargateSize):
        round_up(32768, 1024)


@given(cpu=st.sampled_from(sorted(TABLE)), memory=st.integers(1, MAX_MEMORY))
def test_round_up_is_valid_sufficient_and_minimal(cpu, memory):
    got_cpu, got_mem = round_up(cpu, memory)
    assert is_valid(got_cpu, got_mem)
    assert got_mem >= memory and got_cpu >= cpu
    # minimal: no valid size with enough CPU has less memory (or as much memory and less CPU)
    for c, mems in TABLE.items():
        for m in mems:
            if c >= cpu and m >= memory:
                assert (m, c) >= (got_mem, got_cpu)


@given(cpu=st.sampled_from(sorted(TABLE)), cap=st.integers(1, MAX_MEMORY + 10_000))
def test_round_down_is_the_largest_valid_size_under_the_cap(cpu, cap):
    got = round_down(cpu, cap)
    candidates = [(m, c) for c, mems in TABLE.items() for m in mems if c >= cpu and m <= cap]
    if not candidates:
        assert got is None
        return
    assert got is not None and is_valid(*got) and got[1] <= cap and got[0] >= cpu
    best_memory = max(m for m, _ in candidates)
    assert got[1] == best_memory
    assert got[0] == min(c for m, c in candidates if m == best_memory)


@pytest.mark.parametrize(("text", "expected"), [
    ("256", 256), ("1024", 1024), ("1 vCPU", 1024), ("2 vcpu", 2048), (".25 vCPU", 256), ("0.5 vCPU", 512),
    (None, None), ("", None), ("lots", None), (512, 512),
])
def test_parse_cpu(text, expected):
    assert parse_cpu(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("512", 512), ("2 GB", 2048), ("0.5GB", 512), ("3072", 3072), ("8 gb", 8192), (None, None), ("much", None),
    (1024, 1024),
])
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected
