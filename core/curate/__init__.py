"""Token statistics (:mod:`~tuneport.curate.stats`), the curation pipeline
(:mod:`~tuneport.curate.pipeline`) and offline embeddings (:mod:`~tuneport.curate.embeddings`).

Engine layer: counters come in as values; nothing here knows a provider.
"""
