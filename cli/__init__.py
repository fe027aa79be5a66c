"""The thin typer layer; ``tuneport.cli.main:main`` is the console script.

Importing this package must not import torch or any provider SDK.
"""
