"""Developer tools that read the source tree (architecture checks and generated docs); not shipped."""
