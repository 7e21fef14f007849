"""Human motion videos: a generated stand-in for Human3.6M, and an importer for a licensed copy."""
