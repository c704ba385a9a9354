"""Hugging Face Hub: resolve, download (or read from cache/folder) and publish models."""

from lam.hub.models import ModelRef, builtin_models, load_model, parse_model_ref

__all__ = ["ModelRef", "builtin_models", "load_model", "parse_model_ref"]
