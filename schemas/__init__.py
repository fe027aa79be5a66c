"""Pydantic models shared by every part of tuneport. No I/O."""

from tuneport.schemas.estimate import Estimate
from tuneport.schemas.example import (
    FORMAT_VERSION,
    AnyRecord,
    Example,
    FunctionCall,
    FunctionSpec,
    Message,
    PreferenceExample,
    Record,
    Role,
    ToolCall,
    ToolSpec,
)
from tuneport.schemas.job import (
    JobConfig,
    JobEvent,
    JobRecord,
    JobRef,
    JobState,
    JobStatus,
    Method,
)
from tuneport.schemas.problem import Problem, Report, Severity

__all__ = [
    "FORMAT_VERSION",
    "AnyRecord",
    "Estimate",
    "Example",
    "FunctionCall",
    "FunctionSpec",
    "JobConfig",
    "JobEvent",
    "JobRecord",
    "JobRef",
    "JobState",
    "JobStatus",
    "Message",
    "Method",
    "PreferenceExample",
    "Problem",
    "Record",
    "Report",
    "Role",
    "Severity",
    "ToolCall",
    "ToolSpec",
]
