"""codesign: hardware-software co-design optimizer for serving LLM agents."""

__version__ = "0.1.0"
