"""Which precision the hardware runs fastest: `--mixed_precision auto`.

bfloat16 (`mixed_bfloat16`: convolutions in bfloat16, keypoint maths, dynamics and losses in
float32) pays only where the hardware computes bfloat16 natively: a GPU, or a CPU with
AVX512_BF16 or AMX-BF16 that oneDNN is allowed to use. Elsewhere oneDNN emulates bfloat16 and
it is 2-3x slower than float32 (docs/benchmarks.md). `ONEDNN_MAX_CPU_ISA` caps the instruction
sets oneDNN may use (e.g. `AVX512_CORE_VNNI` turns the bfloat16 kernels off), so it is honoured,
as is `TF_ENABLE_ONEDNN_OPTS=0` (oneDNN off; the package's default is 1).
"""

import os

# The CPU flags (Linux /proc/cpuinfo names) of native bfloat16 arithmetic.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that still allow its bfloat16 kernels; any other cap
# (e.g. AVX512_CORE_VNNI, AVX2) excludes them. Values are case-insensitive.
BFLOAT16_ISA_CAPS = ("ALL", "AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
                     "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16")


def cpu_flags(cpuinfo_path="/proc/cpuinfo"):
  """The set of CPU feature flags of the first processor (empty where there is no such file)."""
  try:
    with open(cpuinfo_path) as f:
      for line in f:
        if line.startswith("flags"):
          return set(line.partition(":")[2].split())
  except OSError:
    pass
  return set()


def choose_bfloat16(has_gpu, flags, environ=None):
  """(use bfloat16?, the reason in a few words) for `--mixed_precision auto`."""
  environ = os.environ if environ is None else environ
  if has_gpu:
    return True, "a GPU is visible"
  native = sorted(set(BFLOAT16_CPU_FLAGS) & set(flags))
  if not native:
    return False, "the CPU has neither AVX512_BF16 nor AMX-BF16 (bfloat16 would be emulated)"
  if environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower() in ("0", "false"):
    # The package sets it to 1 (video_structure/__init__.py); the user turned it off, and
    # TensorFlow's own (Eigen) CPU convolutions have no native bfloat16 path.
    return False, "TF_ENABLE_ONEDNN_OPTS turns oneDNN off (its bfloat16 kernels with it)"
  cap = environ.get("ONEDNN_MAX_CPU_ISA", "").strip()
  if cap and cap.upper() not in BFLOAT16_ISA_CAPS:
    return False, f"ONEDNN_MAX_CPU_ISA={cap} excludes oneDNN's bfloat16 kernels"
  return True, f"the CPU has {', '.join(native)}"


def resolve_auto(resuming, has_gpu, flags, environ=None):
  """`--mixed_precision auto` for one train.py run: (True / False, or None when a resumed run
  keeps the precision its config.json records; the line train.py prints, or None)."""
  if resuming:
    return None, None
  use_bfloat16, reason = choose_bfloat16(has_gpu, flags, environ)
  return use_bfloat16, (f"--mixed_precision auto: {'bfloat16' if use_bfloat16 else 'float32'} "
                        f"({reason}).")
