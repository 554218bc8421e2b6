"""The one exception type users see: bad input, said plainly."""


class InputError(ValueError):
    """Bad user input: a params key, a data file, a path.

    The message names the input, the problem and the fix, so that stage scripts
    can print it as it is and exit without a traceback.
    """
