"""Training: Lightning tasks, losses, fine-tuning and distillation."""
