"""Tests of `training/precision.py` (`--mixed_precision auto`) and its flag."""

import argparse
import os
import subprocess
import sys

import pytest

from tests import helpers
from video_structure import presets
from video_structure.training import precision

AMD_EPYC_FLAGS = {"avx512f", "avx512_vnni", "avx512_bf16"}  # Zen 4: AVX512_BF16, no AMX.
XEON_AMX_FLAGS = {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"}
AVX2_FLAGS = {"avx", "avx2", "fma"}


@pytest.mark.parametrize("has_gpu, flags, environ, expected, reason", [
    (True, AVX2_FLAGS, {}, True, "a GPU is visible"),
    (False, XEON_AMX_FLAGS, {}, True, "the CPU has amx_bf16, avx512_bf16"),
    (False, AMD_EPYC_FLAGS, {}, True, "the CPU has avx512_bf16"),
    (False, AVX2_FLAGS, {}, False, "neither AVX512_BF16 nor AMX-BF16"),
    (False, set(), {}, False, "neither AVX512_BF16 nor AMX-BF16"),
    (False, AMD_EPYC_FLAGS, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"}, False,
     "ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI excludes"),
    (False, XEON_AMX_FLAGS, {"ONEDNN_MAX_CPU_ISA": "avx512_core_amx"}, True, "amx_bf16"),
    (False, XEON_AMX_FLAGS, {"ONEDNN_MAX_CPU_ISA": "ALL"}, True, "amx_bf16"),
    (False, XEON_AMX_FLAGS, {"TF_ENABLE_ONEDNN_OPTS": "0"}, False, "turns oneDNN off"),
    (False, AMD_EPYC_FLAGS, {"TF_ENABLE_ONEDNN_OPTS": "False"}, False, "turns oneDNN off"),
    (False, XEON_AMX_FLAGS, {"TF_ENABLE_ONEDNN_OPTS": "1"}, True, "amx_bf16"),
])
def test_bfloat16_where_the_hardware_computes_it(has_gpu, flags, environ, expected, reason):
  use_bfloat16, why = precision.choose_bfloat16(has_gpu, flags, environ)
  assert use_bfloat16 is expected and reason in why


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
  cpuinfo = tmp_path / "cpuinfo"
  cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 amx_bf16\n"
                     "\nprocessor\t: 1\nflags\t\t: fpu\n")
  assert precision.cpu_flags(str(cpuinfo)) == {"fpu", "avx2", "amx_bf16"}
  assert precision.cpu_flags(str(tmp_path / "missing")) == set()


def test_a_resumed_run_keeps_its_precision():
  assert precision.resolve_auto(True, True, XEON_AMX_FLAGS) == (None, None)
  assert precision.resolve_auto(False, False, AVX2_FLAGS, {}) == (
      False, "--mixed_precision auto: float32 (the CPU has neither AVX512_BF16 nor AMX-BF16 "
             "(bfloat16 would be emulated)).")


@pytest.mark.parametrize("text, expected", [("auto", "auto"), ("AUTO", "auto"), ("true", True),
                                            ("0", False), ("off", False)])
def test_the_flag_takes_auto_true_or_false(text, expected):
  parser = presets.add_config_arguments(argparse.ArgumentParser())
  assert parser.parse_args(["--mixed_precision", text]).mixed_precision == expected


def test_the_flag_refuses_other_values(capsys):
  parser = presets.add_config_arguments(argparse.ArgumentParser())
  with pytest.raises(SystemExit):
    parser.parse_args(["--mixed_precision", "bf16"])
  assert "expected auto, true or false, got 'bf16'" in capsys.readouterr().err


def test_importing_the_package_turns_onednn_on_unless_the_user_chose(tmp_path):
  """video_structure/__init__.py sets TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow loads (TF's
  own default leaves oneDNN off on AVX2-only CPUs); a value the user set is kept."""
  code = ("import os, sys; import video_structure, tensorflow; "
          "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], 'tensorflow' in sys.modules)")
  results = {}
  for given in (None, "0"):
    environment = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if given is not None:
      environment["TF_ENABLE_ONEDNN_OPTS"] = given
    environment["TF_CPP_MIN_LOG_LEVEL"] = "0"  # TensorFlow says whether oneDNN is on.
    completed = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=dict(
        environment, PYTHONPATH=helpers.REPO_ROOT), capture_output=True, text=True, timeout=300,
                               check=True)
    results[given] = (completed.stdout.split(), "oneDNN custom operations are on" in
                      completed.stderr)
  assert results[None] == (["1", "True"], True)
  assert results["0"] == (["0", "True"], False)
