"""The measurement file's format version, shared by the dependency-free harness
(``bench``) and the validating reader (``report``)."""

FORMAT_VERSION = 1
