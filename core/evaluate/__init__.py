"""Comparing models on held-out data (:mod:`~tuneport.evaluate.run`) and the answer metrics
(:mod:`~tuneport.evaluate.metrics`). Jobs layer."""
