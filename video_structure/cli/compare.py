"""Compare evaluated runs: model variants x seeds, paper-style figures and a summary JSON.

  python compare.py --runs struct_vrnn=runs/struct_s0,runs/struct_s1 \
                           cnn_vrnn='runs/cnn_s*' --output comparison/

Each --runs entry is NAME=PATH[,PATH...]: a variant name and its runs (one per seed). A PATH is
a run directory (reads <run>/evaluation/evaluation.json), an evaluate.py output directory, an
evaluation.json file, or a glob of those (quote it so that the shell leaves it alone). Run
evaluate.py on every run first.

Writes to --output: video_metrics.png (closest / furthest VGG, SSIM, PSNR per time step: mean
across seeds with the 95% Student t confidence band; a single seed gets no band and says so in
the legend), tracking_error.png (best of samples and repeat-last per variant), fvd.png (one dot
per seed, bar at the mean) and summary.json (every number). See docs/evaluation.md.
"""

import argparse
import os

from video_structure.evaluation import compare


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--runs", nargs="+", required=True, metavar="NAME=PATH[,PATH...]",
                      help="Variants and their runs (see above).")
  parser.add_argument("--output", required=True, help="Output directory.")
  parser.add_argument("--confidence", type=float, default=compare.DEFAULT_CONFIDENCE,
                      help="Confidence of the bands across seeds (default 0.95).")
  args = parser.parse_args(argv)
  if not 0.0 < args.confidence < 1.0:
    parser.error(f"--confidence must be in (0, 1), got {args.confidence}.")

  try:
    variants = compare.parse_run_specs(args.runs)
  except (ValueError, FileNotFoundError) as error:
    parser.error(str(error))
  summary = compare.compare_runs(variants, args.output, args.confidence)
  print("\n".join(compare.summary_lines(summary)))
  print(f"Wrote {os.path.join(args.output, 'summary.json')} and "
        f"{', '.join(summary['figures'].values()) or 'no figures'} in {args.output}")
  return summary


def run():
  """The `video-structure-compare` command: `main()` with short error lines and --debug
  (cli/console.py); returns the exit status."""
  from video_structure.cli import console  # pylint: disable=import-outside-toplevel
  return console.run_command(main, "compare")
