"""The human-motion TFDS builder, for `tfds build datasets/human_motion`.

The builder lives in `video_structure.data.builders.human_motion` (the Human3.6M importer in
`video_structure.data.human36m`); this module only exposes it where TFDS' command line looks
for it (`<name>/<name>_dataset_builder.py`).
"""

from video_structure.data.builders import human_motion

HumanMotionConfig = human_motion.HumanMotionConfig
PREDEFINED_CONFIGS = human_motion.PREDEFINED_CONFIGS


class Builder(human_motion.Builder, skip_registration=True):
  """`human_motion.Builder` defined in this module, where `tfds build` looks for it (the
  package class is the one registered with TFDS)."""
