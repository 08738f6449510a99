"""The house rules of ARCHITECTURE.md: imports flow one way through the rooms, with no circle."""

import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
# Rooms from the ground up; a module may import from its own room and the ones below it.
ROOMS = [
    ("ground", ("reverbsynth", "reverbsynth.errors", "reverbsynth.paths", "reverbsynth.storage",
                "reverbsynth.progress", "reverbsynth.console")),
    ("data", ("reverbsynth.data",)),
    ("pipelines", ("reverbsynth.pipelines",)),
    ("spectral", ("reverbsynth.spectral",)),
    ("model", ("reverbsynth.model",)),
    ("runs", ("reverbsynth.runs",)),
    ("synthesis", ("reverbsynth.synthesis",)),
    ("training", ("reverbsynth.training",)),
    ("evaluation", ("reverbsynth.evaluation",)),
    ("cli", ("reverbsynth.cli", "reverbsynth.__main__")),
]


def _modules() -> dict:
  """{module name: source path} of the package, pipelines/ as reverbsynth.pipelines."""
  found = {}
  for root, package in ((REPO / "reverbsynth", "reverbsynth"),
                        (REPO / "pipelines", "reverbsynth.pipelines")):
    for path in root.rglob("*.py"):
      parts = [package, *path.relative_to(root).with_suffix("").parts]
      if parts[-1] == "__init__":
        parts.pop()
      found[".".join(parts)] = path
  return found


def _room(module: str) -> int:
  """Index in ROOMS of the room holding `module` (the longest matching prefix)."""
  best = max(((len(p), i) for i, (_, prefixes) in enumerate(ROOMS) for p in prefixes
              if module == p or module.startswith(p + ".")), default=None)
  assert best is not None, f"{module} is in no room: add it to ROOMS and ARCHITECTURE.md"
  return best[1]


def _imports(path: pathlib.Path, modules: dict) -> set:
  """The package's modules that `path` imports anywhere (functions included)."""
  out = set()
  for node in ast.walk(ast.parse(path.read_text())):
    names = []
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    for name in names:
      if name.split(".")[0] in ("reverbsynth", "pipelines"):
        assert name.split(".")[0] == "reverbsynth", f"{path}: import {name}: use reverbsynth.*"
        out.add(max((m for m in modules if name == m or name.startswith(m + ".")), key=len))
  return out


def test_no_module_imports_from_a_room_above_its_own():
  modules = _modules()
  upward = [f"{m} ({ROOMS[_room(m)][0]}) imports {i} ({ROOMS[_room(i)][0]})"
            for m, path in modules.items() for i in _imports(path, modules)
            if _room(i) > _room(m) or (ROOMS[_room(i)][0] == "pipelines"
                                        and ROOMS[_room(m)][0] not in ("pipelines", "cli"))]
  assert not upward, "\n".join(upward)


def test_no_import_circle():
  modules = _modules()
  graph = {m: _imports(path, modules) - {m} - {"reverbsynth"} for m, path in modules.items()}
  state, circles = {}, []

  def visit(m, stack):
    state[m] = "open"
    for n in sorted(graph[m]):
      if state.get(n) == "open":
        circles.append(" -> ".join(stack[stack.index(n):] + [n]))
      elif n not in state:
        visit(n, stack + [n])
    state[m] = "done"

  for m in sorted(graph):
    if m not in state:
      visit(m, [m])
  assert not circles, "\n".join(circles)


def test_architecture_md_names_every_room():
  text = (REPO / "ARCHITECTURE.md").read_text()
  missing = [name for name, _ in ROOMS if f"`{name}`" not in text]
  assert not missing, missing
