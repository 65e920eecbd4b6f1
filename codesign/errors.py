"""User-facing errors: raised for bad input, printed as one line by the CLI and API."""


class CodesignError(Exception):
    """Base class for errors caused by user input (bad spec, unknown name, missing file)."""


class NotFoundError(CodesignError):
    """A named thing (system, chip, model, file) does not exist."""


class SpecError(CodesignError):
    """A specification is invalid; the message says which field and why."""


class UnsupportedModelError(CodesignError):
    """A model architecture cannot be described; the message names the missing field."""
