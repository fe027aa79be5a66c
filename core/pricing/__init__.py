"""Pricing (engine layer): the dated price table (:mod:`~tuneport.pricing.table`, data in
``prices.toml``), estimates from counted tokens (:mod:`~tuneport.pricing.estimate`) and the
budget guard (:mod:`~tuneport.pricing.budget`)."""
