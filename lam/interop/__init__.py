"""Models of other frameworks brought into lam's format (safetensors + JSON)."""
