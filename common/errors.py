class UsageError(Exception):
    """Bad input from the user.

    The command-line entry points print the message as one line on stderr and
    exit with status 2, so the message must say what is wrong and how to fix it.
    """
