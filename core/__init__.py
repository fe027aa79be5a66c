"""tuneport: one fine-tuning dataset in; validated, priced and launched on any provider.

The CLI (``tuneport.cli``) is a thin layer over this importable, typed API.
"""

__version__ = "0.1.0"
