"""The engine: the only code that loads models and SAEs (TransformerLens, SAELens, torch):
loading, interventions, batched generation, features, measurements."""
