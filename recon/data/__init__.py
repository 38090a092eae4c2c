"""Training and evaluation data: the procedural 3D data engine and readers for real datasets."""
