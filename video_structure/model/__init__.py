"""The paper's model (Figure 1): pure ops, vision, dynamics, losses, Struct-VRNN and its
hyperparameters. Imports nothing else of `video_structure`."""
