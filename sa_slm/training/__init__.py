"""Shared training machinery for every stage: typed YAML configs, Trainer arguments, safe resume."""
