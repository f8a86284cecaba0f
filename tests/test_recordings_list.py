"""`autotrace ls` and `prune` on a scratch state folder (XDG_STATE_HOME)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import AUTOTRACE, REPO, assert_one_line_error, autotrace_env, run_autotrace
from tests.tmuxdriver import Tmux


def state(tmp_path: Path) -> dict[str, str]:
    return autotrace_env(XDG_STATE_HOME=str(tmp_path / "state"))


def record(env: dict[str, str], *commands: str) -> Path:
    result = run_autotrace(["--headless", *commands], env=env)
    assert result.returncode in (0, 3), result.stderr
    return Path(result.stderr.split("recorded to ")[1].split("\n")[0])


def age(folder: Path, days: float) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["started_unix"] = time.time() - days * 86400
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_ls_lists_newest_first_and_prune_removes_only_old_recordings(tmp_path) -> None:
    env = state(tmp_path)
    old = record(env, "sh -c 'exit 3'", "echo tracer")
    new = record(env, "echo hello")
    age(old, 10)
    root = tmp_path / "state" / "autotrace" / "recordings"
    assert old.parent == root
    (root / "not-a-recording").mkdir()  # the user's own folder: never listed or removed
    (root / "not-a-recording" / "manifest.json").write_text("{}")
    (root / "link").symlink_to(old)  # a link is never followed
    listing = run_autotrace(["ls"], env=env)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(f"echo hello  {new}") and "exited 0" in lines[0]
    assert lines[1].endswith(f"sh -c 'exit 3'  {old}") and "exited 3" in lines[1]
    assert " s " in lines[0] and "B" in lines[0]  # duration and size

    refused = run_autotrace(["prune", "--older-than", "5"], env=env)  # no terminal, no --yes
    assert "add --yes" in assert_one_line_error(refused)
    assert old.exists()
    pruned = run_autotrace(["prune", "--older-than", "5", "--yes"], env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert str(old) in pruned.stdout and str(new) not in pruned.stdout  # said first
    assert not old.exists() and new.exists()
    assert (root / "not-a-recording").exists() and (root / "link").is_symlink()


def test_ls_of_an_empty_state_folder_says_so(tmp_path) -> None:
    result = run_autotrace(["ls"], env=state(tmp_path))
    assert result.returncode == 0 and result.stdout == ""
    assert "no recordings in" in result.stderr


def test_prune_on_a_terminal_asks_first(tmp_path) -> None:
    env = state(tmp_path)
    keep, old = record(env, "echo keep me"), record(env, "echo old")
    age(old, 30)
    tmux = Tmux(cols=500, rows=20)  # no path wrapped
    try:
        tmux.start([*AUTOTRACE, "prune", "--older-than", "7"], cwd=REPO,
                   env={"XDG_STATE_HOME": env["XDG_STATE_HOME"]})
        screen = tmux.wait_for(r"remove these 1 recordings\? \[y/N\]")
        listed = screen.split()  # whole paths: one may be the other's prefix (name-2)
        assert str(old) in listed and str(keep) not in listed
        assert old.exists()  # nothing removed before the answer
        tmux.type("y\n")
        assert tmux.exit_status() == 0
        assert "removed 1 recordings" in tmux.capture()
    finally:
        tmux.kill()
    assert not old.exists() and keep.exists()
