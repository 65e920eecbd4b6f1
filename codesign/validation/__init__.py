"""Measured serving rows, accuracy reports and cross-validation for the performance model."""

from codesign.validation.crossval import cross_validate, cross_validate_predictions
from codesign.validation.report import (
    DEFAULT_GROUPS,
    accuracy_report,
    ape,
    check_predictions,
    write_predictions_csv,
)
from codesign.validation.silicon import SiliconRows, default_silicon_path

__all__ = [
    "DEFAULT_GROUPS",
    "SiliconRows",
    "accuracy_report",
    "ape",
    "check_predictions",
    "cross_validate",
    "cross_validate_predictions",
    "default_silicon_path",
    "write_predictions_csv",
]
