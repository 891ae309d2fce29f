"""One exception type for problems the user can fix (bad data, bad config, bad files).

Entry points catch it and print its message as a single line, without a traceback.
"""


class CloudMLError(Exception):
    """A user-facing error; the message names the file/key/value and what was expected."""
