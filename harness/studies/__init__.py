"""Study kinds: the contract, the registry, and one module per kind (see registry.py)."""
