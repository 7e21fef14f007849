"""The TFDS builder classes (Basketball, human motion, DMCS); the top-level `datasets/` folders
hold thin modules that expose them to `tfds build`."""
