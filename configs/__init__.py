"""Experiment configs (YAML), shipped as package data; see neuroconv.brain.config."""
