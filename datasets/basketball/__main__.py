"""`python -m datasets.basketball --config paper [--beam_pipeline_options ...]`: generates the
Basketball data (see `basketball_dataset_builder.main`; a TFDS builder module cannot run as
`__main__` itself, since TFDS names the builder after its module)."""

from datasets.basketball import basketball_dataset_builder

if __name__ == "__main__":
  basketball_dataset_builder.main()
