"""Training recipes that plug into `StructVRNN` (the paper's model does not know them)."""
