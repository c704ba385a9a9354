"""Hugging Face Hub: download, cache, model cards and versions."""
