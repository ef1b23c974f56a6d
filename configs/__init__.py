"""Experiment configs (YAML), shipped as package data; see neuroconv.train.config."""
