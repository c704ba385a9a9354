"""lam models inside other simulation frameworks (each behind its own optional dependency).

- :mod:`lam.integrations.torchsim`: a TorchSim ``ModelInterface`` (``pip install lam[torchsim]``) for
  TorchSim's batched MD and relaxations.
"""
