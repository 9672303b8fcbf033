"""Errors a user can fix. Entry points print their message (never a traceback) and exit non-zero."""


class PipelineError(Exception):
    """A problem with the user's files, configuration or environment; the message says how to fix it."""


class InputError(PipelineError):
    """A competition file that cannot be used as it is: the message names the file, row or column."""
