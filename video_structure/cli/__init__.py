"""The command-line programs: `main(argv=None)` of each console command (pyproject.toml).

  train.py       video-structure-train       (python train.py)
  evaluate.py    video-structure-evaluate    (python evaluate.py)
  compare.py     video-structure-compare     (python compare.py)
  downstream.py  video-structure-downstream  (python -m video_structure.downstream.<name>)
"""
