"""The DeepMind Control Suite TFDS builder, for `tfds build datasets/dmcs`.

The builder lives in `video_structure.data.builders.dmcs`; this module only exposes it where
TFDS' command line looks for it (`<name>/<name>_dataset_builder.py`).
"""

from video_structure.data.builders import dmcs

DmcsConfig = dmcs.DmcsConfig
PREDEFINED_CONFIGS = dmcs.PREDEFINED_CONFIGS


class Builder(dmcs.Builder, skip_registration=True):
  """`dmcs.Builder` defined in this module, where `tfds build` looks for it (the package class
  is the one registered with TFDS)."""
