"""The package's shape holds: sub-packages import only in the directions that
docs/architecture.md allows, and the view does no I/O of its own."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "autotrace"

# Room -> the rooms it may import from ("base" is autotrace/*.py other than cli).
# Keep in step with docs/architecture.md, "Import directions".
ALLOWED = {
    "base": {"base"},
    "format": {"base", "format"},
    "findings": {"base", "findings"},
    "view": {"base", "view", "findings"},
    "live": {"base", "format", "findings", "live"},
    "replay": {"base", "format", "findings", "view", "replay", "export"},
    "export": {"base", "format", "findings", "view", "export"},
    "term": {"base", "format", "findings", "view", "live", "replay", "export", "term"},
    "share": {"base", "format", "findings", "view", "replay", "export", "share"},
    "commands": {"base", "format", "findings", "view", "live", "replay", "export", "term",
                 "share", "commands"},
    "cli": {"base", "commands", "cli"},
}
# Rooms whose code must not touch files or processes itself.
NO_IO = {"view", "findings"}


def room_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "autotrace":
        raise ValueError(module)
    if len(parts) == 1:
        return "base"
    if parts[1] in ("cli", "__main__"):
        return "cli"
    if (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return "base"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, package: str) -> set[str]:
    """Every autotrace module a file imports, at any depth (late imports too)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names
                         if (PACKAGE.parent / f"{name}.{alias.name}".replace(".", "/")).is_dir()
                         or (PACKAGE.parent / (f"{name}.{alias.name}".replace(".", "/")
                                               + ".py")).is_file())
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.JoinedStr)):
            found.add("autotrace.commands")  # cli's table of subcommands
    return {name for name in found if name == "autotrace" or name.startswith("autotrace.")}


def sources() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def test_every_room_imports_only_what_it_may() -> None:
    wrong = []
    for path in sources():
        module = module_name(path)
        room = room_of(module)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for imported in imported_modules(ast.parse(path.read_text()), package):
            if imported == "autotrace":
                continue  # the version
            target = room_of(imported)
            if target not in ALLOWED[room]:
                wrong.append(f"{module} ({room}) imports {imported} ({target})")
    assert not wrong, "\n".join(wrong)


def test_the_view_opens_no_files_and_runs_nothing() -> None:
    banned_calls = {"open", "os.open", "os.write", "os.read", "subprocess.run",
                    "subprocess.Popen", "os.kill", "os.killpg"}
    banned_imports = {"subprocess", "socket", "select", "selectors"}
    wrong = []
    for path in sources():
        if room_of(module_name(path)) not in NO_IO:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in banned_calls:
                    wrong.append(f"{path.name}:{node.lineno} calls {name}")
            elif isinstance(node, ast.Import):
                wrong += [f"{path.name}:{node.lineno} imports {a.name}" for a in node.names
                          if a.name in banned_imports]
            elif isinstance(node, ast.ImportFrom) and node.module in banned_imports:
                wrong.append(f"{path.name}:{node.lineno} imports {node.module}")
    assert not wrong, "\n".join(wrong)


def test_the_check_itself_sees_a_wrong_import() -> None:
    # A view module importing the session must be caught by the rule above.
    tree = ast.parse("from autotrace.live.session import Session\nimport autotrace.format")
    imported = imported_modules(tree, "autotrace.view")
    rooms = {room_of(name) for name in imported}
    assert rooms - ALLOWED["view"] == {"live", "format"}
