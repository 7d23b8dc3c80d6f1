"""Capture: run a model on a corpus and record every head's queries and keys.

loader.py turns a catalog entry into a model, trace.py is the one hook mechanism,
inputs.py turns corpus items into batches with provenance, run.py drives the batches.
"""
