"""Pydantic models shared by every part of tuneport. No I/O."""

from tuneport.schemas.estimate import Estimate
from tuneport.schemas.example import (
    FORMAT_VERSION,
    AnyRecord,
    ContentPart,
    Example,
    FunctionCall,
    FunctionSpec,
    ImagePart,
    ImageURL,
    Message,
    PreferenceExample,
    Record,
    Role,
    TextPart,
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
    "ContentPart",
    "Estimate",
    "Example",
    "FunctionCall",
    "FunctionSpec",
    "ImagePart",
    "ImageURL",
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
    "TextPart",
    "ToolCall",
    "ToolSpec",
]
