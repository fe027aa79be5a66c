"""Validation (engine layer): generic checks and the :class:`Rules` value a backend supplies
(:mod:`~tuneport.validation.rules`), the validator (:mod:`~tuneport.validation.validate`) and its
parallel form for big JSONL files (:mod:`~tuneport.validation.parallel`)."""

from tuneport.validation.parallel import validate_file
from tuneport.validation.rules import Finding, Rules
from tuneport.validation.validate import Validator, group_problems, validate_rows

__all__ = ["Finding", "Rules", "Validator", "group_problems", "validate_file", "validate_rows"]
