"""What a command imports before its first frame (issue 9: import only what the
command needs), and the deferred imports (autotrace.lazy) that make it so."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# What `autotrace CMD` (the live view) and `autotrace replay` import up to
# their first frame: the command modules and everything they import at the top.
LIVE = ("autotrace.cli", "autotrace.commands.trace", "autotrace.term.live_view",
        "autotrace.live.probes", "autotrace.live.attach")
REPLAY = ("autotrace.cli", "autotrace.commands.replay", "autotrace.commands.recordings",
          "autotrace.replay.player", "autotrace.term.replay_loop")


def loaded_after(modules: tuple[str, ...], code: str = "") -> list[str]:
    """The modules in sys.modules of a fresh interpreter that imported MODULES,
    counting a deferred stand-in as not loaded."""
    script = textwrap.dedent(f"""
        import sys, types
        for name in {modules!r}:
            __import__(name)
        {code}
        print("\\n".join(name for name, module in sys.modules.items()
                         if type(module) is types.ModuleType))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).parent.parent)
    return result.stdout.split()


def test_the_live_view_draws_before_psutil_is_imported():
    loaded = loaded_after(LIVE)
    assert "psutil" not in loaded and "psutil._common" not in loaded
    assert "autotrace.live.session" in loaded  # the check itself sees what it imports


def test_a_replay_imports_nothing_of_a_live_session():
    loaded = loaded_after(REPLAY)
    assert not [name for name in loaded if name.startswith("autotrace.live.")]
    assert "psutil._common" not in loaded


def test_psutil_is_there_at_its_first_use_with_its_own_classes():
    loaded = loaded_after(LIVE, textwrap.dedent("""
        import psutil
        from autotrace.live import procs
        assert isinstance(psutil.Process(), psutil.Process)
        try:
            psutil.Process(2 ** 22 + 1)
        except psutil.NoSuchProcess as error:
            from psutil import NoSuchProcess
            assert type(error) is NoSuchProcess
        assert procs.our_descendants() == []
    """).replace("\n", "\n        "))
    assert "psutil._common" in loaded and "psutil" in loaded


def test_a_deferred_module_is_imported_once_whichever_thread_reads_it_first(tmp_path):
    # A module whose import takes a while: every thread that reads it meanwhile
    # must wait for all of it, and it runs once.
    (tmp_path / "slowmod.py").write_text(textwrap.dedent("""
        import time
        RUNS = [1]
        time.sleep(0.3)
        COMPLETE = True
    """))
    script = textwrap.dedent(f"""
        import sys, threading
        sys.path.insert(0, {str(tmp_path)!r})
        from autotrace.lazy import defer
        defer("slowmod")
        import slowmod
        assert "slowmod" in sys.modules and type(slowmod).__name__ == "_Deferred"
        seen = []
        def read():
            seen.append((slowmod.COMPLETE, len(slowmod.RUNS)))
        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads: thread.start()
        for thread in threads: thread.join()
        print(seen)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str([(True, 1)] * 8)


def test_a_deferred_module_that_fails_says_why_at_each_use(tmp_path):
    (tmp_path / "brokenmod.py").write_text("raise ImportError('brokenmod needs libfoo')\n")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from autotrace.lazy import defer
        defer("brokenmod")
        import brokenmod
        before = dict(vars(brokenmod))
        for _ in range(2):
            try:
                brokenmod.anything
            except ImportError as error:
                print(error)
            import brokenmod as again
            assert again is brokenmod and sorted(vars(brokenmod)) == sorted(before)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent)
    assert result.stdout.split("\n")[:2] == ["brokenmod needs libfoo"] * 2, result.stderr
