"""The paper's Figures 3, 4 and 5 over several seeds, from one command (Basketball).

  python scripts/paper_figures.py                         # 3 seeds of every variant
  python scripts/paper_figures.py --seeds 0,1 --variants struct_vrnn,cnn_vrnn --dry_run

For every variant and seed it trains `train.py --model VARIANT --seed SEED` into
`<root>/<variant>/seed<SEED>` (the dataset's default preset: `cpu` without a GPU), evaluates it
with evaluate.py, then draws each figure with compare.py's 95% Student t bands across seeds:

  figure3/  video metrics (VGG cosine, SSIM, PSNR, LPIPS; closest and furthest sample) and FVD
            dots per seed: Struct-VRNN against CNN-VRNN;
  figure4/  tracking error per time step (best of 50 samples, repeat-last): Struct-VRNN,
            without best-of-many, Struct-RNN, CNN-VRNN and both supervised variants;
  figure5/  the same for the ablations without the separation and the sparsity losses.

Every variant is trained whole (no vision shared between variants). Only the Figure 3 variants
get the video metrics and FVD (`--num_video_windows 0 --skip_fvd` for the others: their
figures show tracking only). The work can be stopped at any time: running the command again
resumes the unfinished training (train.py resumes from its last checkpoint), skips every run
whose evaluation is written and redraws the figures from what exists.
"""

import argparse
import os
import sys

from video_structure.cli import studies

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = {
    "figure3": ("struct_vrnn", "cnn_vrnn"),
    "figure4": ("struct_vrnn", "struct_vrnn_no_bom", "struct_rnn", "cnn_vrnn",
                "struct_vrnn_supervised", "cnn_vrnn_supervised"),
    "figure5": ("struct_vrnn", "struct_vrnn_no_separation", "struct_vrnn_no_sparsity"),
}
# Every variant once, in the order trained (Figure 3's first, so partial results are useful).
VARIANTS = tuple(dict.fromkeys(v for names in FIGURES.values() for v in names))
VIDEO_VARIANTS = FIGURES["figure3"]


def run_dir(root, variant, seed):
  return os.path.join(root, variant, f"seed{seed}")


def evaluation_json(root, variant, seed):
  return studies.evaluation_json(run_dir(root, variant, seed))


def plan(root, variants, seeds, data_dir, python=sys.executable):
  """The commands still to run, in order: [(label, argv)]. A run whose evaluate.py output
  exists is done; one whose training finished (train.py's own evaluation.json is written
  last) is only evaluated."""
  commands = []
  for variant in variants:
    for seed in seeds:
      directory = run_dir(root, variant, seed)
      train = [python, os.path.join(ROOT, "train.py"), "--dataset", "basketball",
               "--model", variant, "--seed", str(seed), "--run_dir", directory,
               "--data_dir", data_dir]
      evaluate = [python, os.path.join(ROOT, "evaluate.py"), "--run_dir", directory,
                  "--data_dir", data_dir]
      if variant not in VIDEO_VARIANTS:
        evaluate += ["--num_video_windows", "0", "--skip_fvd"]
      commands += studies.remaining_commands(
          directory, (f"train {variant} seed {seed}", train),
          (f"evaluate {variant} seed {seed}", evaluate))
  return commands


def draw_figures(root, variants, seeds, stream=sys.stdout):
  """compare.py over the evaluated runs of each figure; returns {figure: summary or None}."""
  from video_structure.evaluation import compare  # pylint: disable=import-outside-toplevel
  summaries = {}
  for figure, names in FIGURES.items():
    runs = {name: [evaluation_json(root, name, seed) for seed in seeds
                   if os.path.isfile(evaluation_json(root, name, seed))]
            for name in names if name in variants}
    runs = {name: paths for name, paths in runs.items() if paths}
    if not runs:
      summaries[figure] = None
      continue
    summary = compare.compare_runs(runs, os.path.join(root, figure))
    summaries[figure] = summary
    print(f"\n{figure} ({os.path.join(root, figure)}):", file=stream)
    print("\n".join(compare.summary_lines(summary)), file=stream)
  return summaries


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--root", default="runs/paper_figures", help="Where runs and figures go.")
  parser.add_argument("--seeds", default="0,1,2", help="Comma-separated seeds (default 0,1,2).")
  parser.add_argument("--variants", default=",".join(VARIANTS),
                      help="Comma-separated variants (default: every variant of the figures).")
  parser.add_argument("--data_dir", default="data", help="As train.py's --data_dir.")
  parser.add_argument("--dry_run", action="store_true", help="Print the commands only.")
  args = parser.parse_args(argv)
  try:
    variants = studies.parse_names(args.variants, VARIANTS, "--variants")
    seeds = studies.parse_seeds(args.seeds)
  except ValueError as error:
    parser.error(str(error))
  # Absolute: the commands run in the project directory.
  root, data_dir = os.path.abspath(args.root), os.path.abspath(args.data_dir)
  commands = plan(root, variants, seeds, data_dir)
  print(f"{len(commands)} commands to run ({len(variants)} variants x {len(seeds)} seeds; "
        f"done runs are skipped).")
  status, _ = studies.run_commands(commands, ROOT, args.dry_run)
  if status:
    return status
  if not args.dry_run:
    draw_figures(root, variants, seeds)
  return 0


if __name__ == "__main__":
  sys.exit(main())
