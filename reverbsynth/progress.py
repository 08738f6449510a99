"""Progress on stderr: a bar on a terminal, a summary line per phase in a log."""

import sys
import time


class Progress:
  """Progress on stderr: a bar on a terminal; in a log (stderr not a terminal) one summary
  line per phase instead. A phase ends when `update` gets another `phase`, and at `close`.
  Nothing at all when not `enabled`."""

  def __init__(self, enabled: bool, total, unit: str, phase: str = "", stream=None):
    """`total` units (None: unknown) on `stream` (default: sys.stderr as it is now)."""
    from tqdm import tqdm
    self.stream = sys.stderr if stream is None else stream
    self.log = enabled and not self.stream.isatty()
    self.bar = tqdm(total=total, unit=unit, desc=phase, file=self.stream, dynamic_ncols=True,
                    disable=self.log or not enabled)
    self.unit, self.phase, self.count = unit, phase, 0
    self.values: dict = {}
    self.started = self.last = time.perf_counter()

  def update(self, count: int, phase=None, **values) -> None:
    """`count` more units done, in `phase` (default: the current one); `values` (numbers,
    e.g. losses) are shown beside the bar and in the summary line."""
    if phase is not None and phase != self.phase:
      self._summary()
      self.phase, self.count, self.started = phase, 0, self.last
      self.bar.set_description(phase, refresh=False)
    self.count += count
    self.values = values
    self.bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)
    self.bar.update(count)
    self.last = time.perf_counter()

  def _summary(self) -> None:
    if not (self.log and self.count):
      return
    seconds = max(self.last - self.started, 1e-6)
    values = "".join(f", {k} {v:.3g}" for k, v in self.values.items())
    print(f"{self.phase}: {self.count} {self.unit}s in {seconds:.1f} s "
          f"({self.count / seconds:.3g} {self.unit}s/s){values}", file=self.stream, flush=True)

  def close(self) -> None:
    self._summary()
    self.count = 0
    self.bar.close()

  def __enter__(self):
    return self

  def __exit__(self, kind, *_):
    if kind is not None:
      self.count = 0  # A phase cut short has no summary: the error says what happened.
    self.close()
