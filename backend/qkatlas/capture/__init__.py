"""Capture: run a model on a corpus and record every head's queries and keys.

loader.py turns a catalog entry into a model through its adapter (adapters.py: one per kind of
model, owning inputs, forward, tracing and the eager reference); hub.py says where weights come
from; gguf.py turns a GGUF file into a cached Hugging Face folder, once; trace.py is the one hook
mechanism; inputs.py turns corpus items into batches with provenance; run.py drives the batches;
verify.py checks the rebuilt attention.
"""
