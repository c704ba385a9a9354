"""Neural-network building blocks (pure torch)."""
