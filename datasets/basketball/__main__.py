"""`python -m datasets.basketball --config paper [--num_workers N | --beam_pipeline_options ...]`
(from the repository root): generates the Basketball data with
`video_structure.data.builders.basketball.main`, the same command as `python -c "from
video_structure.data.builders import basketball; basketball.main()" ...`."""

from video_structure.data.builders import basketball

if __name__ == "__main__":
  basketball.main()
