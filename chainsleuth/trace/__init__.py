"""trace stage: follow amounts backward to sources and forward to destinations."""
