"""The one exception type that the CLI turns into a one-line message and exit 2."""


class UserError(Exception):
  """Bad input from the user: says what was wrong and what to do instead."""
