"""The two exception types that the CLI turns into one line: exit 2 (the user's), exit 1."""


class UserError(Exception):
  """Bad input from the user: says what was wrong and what to do instead."""


class Failure(Exception):
  """A failure that is not the user's fault (NaN losses, a crashed worker); what was
  complete is kept."""
