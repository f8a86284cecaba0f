"""The pane screen model: what a pane shows for what its program printed."""

from __future__ import annotations

import codecs
import re
import time
import unicodedata
from pathlib import Path

import pytest
from wcwidth import wcswidth

from autotrace.view.backlog import Backlog, Cursor
from autotrace.view.screen import BLANK, Cell, PaneScreen, printable, row_text

GOLDEN = Path(__file__).resolve().parent / "golden"


def screen(cols: int, rows: int, *texts: str, history: int = 100, **kw: object) -> PaneScreen:
    pane = PaneScreen(cols, rows, history=history, **kw)  # type: ignore[arg-type]
    for t, text in enumerate(texts):
        pane.feed(text, float(t))
    pane.catch_up(skip=False)
    return pane


def lines(pane: PaneScreen, scroll: int = 0) -> list[str]:
    return [line.rstrip() for line in pane.text(scroll)]


def numbered(first: int, last: int) -> str:
    return "".join(f"line {i}\r\n" for i in range(first, last + 1))


def assert_well_formed(pane: PaneScreen) -> None:
    """Every row is exactly as wide as the pane and holds only printable text."""
    for scroll in {0, pane.max_scroll // 2, pane.max_scroll}:
        rows = pane.rows_at(scroll)
        assert len(rows) == pane.rows
        for row in rows:
            assert len(row) == pane.cols
            assert wcswidth(row_text(row)) == pane.cols
            for cell in row:
                for ch in cell.char:
                    assert unicodedata.category(ch) not in ("Cc", "Cs", "Cf", "Zl", "Zp"), ch


# ------------------------------------------------------------ drawing


def test_text_and_line_endings() -> None:
    pane = screen(10, 3, "hello\r\nworld\r\n!")
    assert pane.text() == ["hello     ", "world     ", "!         "]
    assert pane.cursor == (1, 2)


def test_colours_and_attributes_reach_the_cells() -> None:
    pane = screen(20, 2, "\x1b[1;31mA\x1b[0;4;44mB\x1b[0;7mC\x1b[0;3mD\x1b[38;5;208mE\x1b[0mF")
    row = pane.rows_at()[0]
    assert row[0] == Cell("A", fg="red", bold=True)
    assert row[1] == Cell("B", bg="blue", underscore=True)
    assert row[2] == Cell("C", reverse=True)
    assert row[3] == Cell("D", italics=True)
    assert row[4].fg == "ff8700" and row[4].italics
    assert row[5] == Cell("F")
    assert row[6] == BLANK


def test_hidden_cursor_is_reported_as_none() -> None:
    pane = screen(10, 2, "ab\x1b[?25l")
    assert pane.cursor is None
    pane.feed("\x1b[?25h")
    pane.catch_up()
    assert pane.cursor == (2, 0)


def test_a_one_row_pane_scrolls_into_history() -> None:
    pane = screen(10, 1, "a\r\nb\r\nc")
    assert lines(pane) == ["c"]
    assert lines(pane, 2) == ["a"]


def test_long_lines_wrap() -> None:
    assert lines(screen(4, 3, "abcdefghij")) == ["abcd", "efgh", "ij"]


def test_wide_characters_take_two_cells_and_rows_keep_their_width() -> None:
    pane = screen(5, 2, "中文x😀")
    row = pane.rows_at()[0]
    assert [c.char for c in row] == ["中", "", "文", "", "x"]
    assert [c.char for c in pane.rows_at()[1]][:2] == ["😀", ""]  # too wide for the last column
    assert_well_formed(pane)


def test_overwriting_half_a_wide_character_blanks_the_other_half() -> None:
    pane = screen(6, 1, "中文\x1b[1Gx\x1b[4Gy")
    assert pane.text() == ["x  y  "]
    assert_well_formed(pane)


def test_combining_characters_join_their_base() -> None:
    pane = screen(6, 1, "e\u0301a\u0308")
    assert [c.char for c in pane.rows_at()[0]][:2] == ["é", "ä"]


def test_feed_only_queues_until_catch_up() -> None:
    pane = PaneScreen(10, 2)
    pane.feed("hello", 1.0)
    assert pane.pending == 5
    assert pane.text() == [" " * 10] * 2
    assert pane.catch_up() is True
    assert pane.pending == 0
    assert lines(pane) == ["hello", ""]
    assert pane.catch_up() is False  # nothing queued, nothing changed


def test_catch_up_limit_leaves_the_rest_queued() -> None:
    pane = PaneScreen(10, 2)
    pane.feed("abcdefgh")
    pane.catch_up(limit=3)
    assert lines(pane)[0] == "abc" and pane.pending == 5
    pane.catch_up()
    assert lines(pane)[0] == "abcdefgh" and pane.pending == 0


def test_escape_sequences_split_across_feeds() -> None:
    pane = PaneScreen(10, 1)
    for piece in ["\x1b", "[3", "1", "mred\x1b", "[0m"]:
        pane.feed(piece)
        pane.catch_up()
    assert pane.rows_at()[0][0] == Cell("r", fg="red")
    assert lines(pane) == ["red"]


# ------------------------------------------------------------ history and scrolling


def test_history_keeps_scrolled_off_lines_and_is_bounded() -> None:
    pane = screen(10, 3, numbered(1, 50), history=20)
    assert pane.max_scroll == 20
    assert lines(pane) == ["line 49", "line 50", ""]
    assert lines(pane, 1) == ["line 48", "line 49", "line 50"]
    assert lines(pane, 20)[0] == "line 29"
    assert lines(pane, 999) == lines(pane, 20)  # scrolling stops at the oldest line
    assert lines(pane, -5) == lines(pane, 0)


def test_rows_at_gives_exactly_rows_by_cols_cells() -> None:
    pane = screen(7, 4, numbered(1, 10))
    for scroll in range(pane.max_scroll + 1):
        rows = pane.rows_at(scroll)
        assert len(rows) == 4 and all(len(row) == 7 for row in rows)


def test_zero_history_keeps_nothing() -> None:
    pane = screen(10, 2, numbered(1, 10), history=0)
    assert pane.max_scroll == 0
    assert lines(pane) == ["line 10", ""]


def test_scroll_region_lines_do_not_enter_history() -> None:
    # A status line at the top and a scroll region below it, like a pager.
    pane = screen(10, 4, "status\x1b[2;4r\x1b[4;1H" + "a\r\nb\r\nc\r\nd\r\ne")
    assert pane.max_scroll == 0
    assert lines(pane) == ["status", "c", "d", "e"]


def test_line_times_record_when_lines_were_printed() -> None:
    pane = PaneScreen(10, 2, history=10)
    for i in range(6):
        pane.feed(f"t{i}\r\n", float(i))
    pane.catch_up()
    # History t0..t4, screen shows t5 and an empty line.
    times = [pane.line_time(s) for s in range(pane.max_scroll, -1, -1)]
    assert times == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert lines(pane, pane.scroll_for_time(2.0))[0] == "t2"
    assert lines(pane, pane.scroll_for_time(2.5))[0] == "t3"
    assert pane.scroll_for_time(-1) == pane.max_scroll
    assert pane.scroll_for_time(99) == 0


def test_time_sync_between_two_panes() -> None:
    fast, slow = PaneScreen(12, 3), PaneScreen(12, 3)
    for i in range(40):
        fast.feed(f"fast {i}\r\n", float(i))
        if i % 10 == 0:
            slow.feed(f"slow {i}\r\n", float(i))
    fast.catch_up()
    slow.catch_up()
    t = fast.line_time(20)
    assert lines(fast, 20)[0] == "fast 18" and t == 18.0
    assert lines(slow, slow.scroll_for_time(t))[0] == "slow 20"


def test_line_times_never_decrease_even_when_lines_are_drawn_out_of_order() -> None:
    pane = PaneScreen(10, 4, history=10)
    pane.feed("\x1b[4;1Hbottom", 1.0)
    pane.feed("\x1b[1;1Htop", 2.0)
    pane.feed("\r\n" * 6 + "x", 3.0)
    pane.catch_up()
    times = [pane.line_time(s) for s in range(pane.max_scroll, -1, -1)]
    assert times == sorted(times)


# ------------------------------------------------------------ search


def test_search_backwards_then_forwards() -> None:
    pane = screen(12, 3, "".join(f"{w} {i}\r\n" for i, w in enumerate(["apple", "pear"] * 10)))
    pattern = re.compile(r"apple \d+")
    hit = pane.search(pattern, 0)
    assert hit is not None
    assert pane.text(hit.scroll)[hit.row][hit.col_start:hit.col_end] == "apple 18"
    older = pane.search(pattern, hit.line, col=hit.col_start)
    assert older is not None
    assert pane.text(older.scroll)[older.row][older.col_start:older.col_end] == "apple 16"
    newer = pane.search(pattern, older.line, backwards=False, col=older.col_start)
    assert newer == hit
    assert pane.search(re.compile("banana"), 0) is None


def test_search_finds_every_match_on_one_line_in_turn() -> None:
    pane = screen(20, 2, "ab ab ab")
    pattern = re.compile("ab")
    first = pane.search(pattern, pane.rows - 1, backwards=False)
    assert first is not None and first.col_start == 0
    second = pane.search(pattern, first.line, backwards=False, col=first.col_start)
    third = pane.search(pattern, first.line, backwards=False, col=second.col_start)
    assert (second.col_start, third.col_start) == (3, 6)
    assert pane.search(pattern, first.line, backwards=False, col=third.col_start) is None


def test_search_keeps_the_view_when_the_match_is_visible() -> None:
    pane = screen(10, 4, numbered(1, 30))
    hit = pane.search(re.compile("line 25"), 0, view=5)
    assert hit is not None and hit.scroll == 5
    assert lines(pane, 5)[hit.row] == "line 25"
    far = pane.search(re.compile("line 3$"), 0, view=5)
    assert far is not None and lines(pane, far.scroll)[far.row] == "line 3"


def test_search_columns_count_wide_characters() -> None:
    pane = screen(12, 1, "中文 abc")
    hit = pane.search(re.compile("abc"), 0)
    assert hit is not None and (hit.col_start, hit.col_end) == (5, 8)
    wide = pane.search(re.compile("文"), 0)
    assert wide is not None and (wide.col_start, wide.col_end) == (2, 4)


# ------------------------------------------------------------ device queries


def test_cursor_position_and_device_attribute_queries_are_answered() -> None:
    replies: list[str] = []
    pane = PaneScreen(20, 5, reply=replies.append)
    pane.feed("ab\r\ncd\x1b[6n\x1b[c\x1b[5n")
    assert pane.wants_reply
    pane.catch_up()
    assert replies == ["\x1b[2;3R", "\x1b[?6c", "\x1b[0n"]
    assert not pane.wants_reply
    assert lines(pane)[:2] == ["ab", "cd"]


def test_queries_without_a_reply_channel_are_dropped() -> None:
    pane = screen(20, 2, "x\x1b[6n\x1b[c\x1b[?6ny")
    assert lines(pane)[0] == "xy"
    assert not pane.wants_reply


# ------------------------------------------------------------ alternate screen


@pytest.mark.parametrize("mode", [1049, 1047, 47])
def test_alternate_screen_leaves_main_screen_and_history_intact(mode: int) -> None:
    pane = screen(12, 3, numbered(1, 6))
    main, history = pane.text(), pane.max_scroll
    pane.feed(f"\x1b[?{mode}h\x1b[2J\x1b[H" + "full screen\r\n" * 20 + "\x1b[1;1H\x1b[2Ktop")
    pane.catch_up()
    assert pane.in_alt_screen
    assert lines(pane)[0] == "top"
    assert pane.max_scroll == history  # nothing from the alternate screen is kept
    pane.feed(f"\x1b[?{mode}l")
    pane.catch_up()
    assert not pane.in_alt_screen
    assert pane.text() == main
    assert pane.max_scroll == history


def test_mode_1049_restores_the_cursor() -> None:
    pane = screen(12, 3, "ab\x1b[?1049h\x1b[3;5Hxyz\x1b[?1049lc")
    assert lines(pane) == ["abc", "", ""]


def test_column_mode_switch_does_not_resize_the_pane() -> None:
    pane = screen(10, 2, "\x1b[?3hab\x1b[?3l")
    assert (pane.cols, pane.rows) == (10, 2)
    assert all(len(row) == 10 for row in pane.rows_at())


# ------------------------------------------------------------ hostile output


HOSTILE = (
    "a\x1b]52;c;aGVsbG8=\x07"  # OSC 52: set the clipboard
    "b\x1b]0;evil\x1b[31m title\x07"  # OSC 0: window title
    "c\x1bP1;2|secret dcs\x1b\\"  # DCS
    "d\x1b_apc payload\x1b\\"  # APC
    "e\x1b^privacy message\x1b\\"  # PM
    "f\x1bXstart of string\x1b\\"  # SOS
    "g\x9b2J\x9d0;t\x07"  # C1 CSI and OSC as UTF-8: plain text in a UTF-8 terminal
    "h\u202e\u2066\u200b\u2028i"  # bidi overrides, zero width, line separator
    "j\x01\x02\x7f\x85\x90k"  # C0, DEL, C1
    "l\ud800\udc80m"  # lone surrogates (bytes decoded with surrogateescape)
    "\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\n"  # tmux passthrough
)


def test_hostile_sequences_never_put_control_characters_in_cells() -> None:
    pane = screen(60, 3, HOSTILE)
    assert_well_formed(pane)
    text = lines(pane)[0]
    for secret in ("aGVsbG8", "secret", "payload", "privacy", "start of", "evil", "eA=="):
        assert secret not in text
    assert text == "abcdefg2J0;thijkl\ufffd\ufffdmn"


def test_title_is_kept_printable_and_only_as_an_attribute() -> None:
    pane = screen(20, 2, "\x1b]2;build \x1b[1mlog\x07x")
    assert pane.title == "build [1mlog"
    assert lines(pane)[0] == "x"


def test_control_string_split_across_feeds_is_still_swallowed() -> None:
    pane = PaneScreen(20, 1)
    for piece in ["a\x1bP", "hidden", " text\x1b", "\\b"]:
        pane.feed(piece)
        pane.catch_up()
    assert lines(pane) == ["ab"]


def test_printable_strips_what_must_not_reach_a_terminal() -> None:
    assert printable("plain text") == "plain text"
    assert printable("a\x1b[31mb") == "a[31mb"
    assert printable("x\u202ey\x9bz\udc80") == "xyz\ufffd"
    assert printable("中文 e\u0301") == "中文 e\u0301"


# ------------------------------------------------------------ robustness


def test_invalid_utf8_and_binary_output() -> None:
    binary = Path("/bin/ls").read_bytes()[:200_000].decode("utf-8", errors="replace")
    pane = screen(80, 24, "\xff\xfe broken \ufffd\r\n", binary, "\r\nstill alive\r\n")
    assert_well_formed(pane)
    pane.feed("\x1bc\x1b[?1049l\x1b[r\x1b[0m\x1b[2J\x1b[Hafter reset")
    pane.catch_up()
    assert lines(pane)[0] == "after reset"


def test_one_megabyte_line_without_newline() -> None:
    pane = PaneScreen(80, 24, history=1000)
    pane.feed("x" * 1_000_000 + "END")
    pane.catch_up()
    assert pane.max_scroll == 1000
    assert lines(pane)[-2:] == ["x" * 80, "END"]  # 1_000_000 is 12_500 full rows
    assert_well_formed(pane)


def test_megabyte_of_wide_characters_and_emoji() -> None:
    pane = PaneScreen(81, 10)  # odd width: a wide character never fits the last column
    pane.feed("中😀文" * 100_000)
    pane.catch_up()
    assert_well_formed(pane)
    assert all(row_text(row).rstrip() for row in pane.rows_at())


def test_odd_sequences_do_not_break_the_pane() -> None:
    odd = "\x1b[?6n\x1b[99999;99999H\x1b[-1A\x1b[38;5;999m\x1b[38;2m\x1b#8\x1b(0\x1b%G\x1b[?1049h"
    pane = screen(10, 3, odd, "ok")
    assert_well_formed(pane)
    assert "ok" in "".join(pane.text())


# ------------------------------------------------------------ resize


def test_shrinking_keeps_the_cursor_line_and_scrolls_the_rest_into_history() -> None:
    pane = screen(10, 5, "a\r\nb\r\nc\r\nd")
    pane.resize(10, 2)
    assert lines(pane) == ["c", "d"]
    assert lines(pane, 2) == ["a", "b"]
    assert pane.cursor == (1, 1)


def test_growing_brings_history_back_down() -> None:
    pane = screen(10, 2, "a\r\nb\r\nc\r\nd")
    pane.resize(10, 4)
    assert lines(pane) == ["a", "b", "c", "d"]
    assert pane.max_scroll == 0
    assert pane.cursor == (1, 3)


def test_narrowing_clips_rows_to_the_new_width() -> None:
    pane = screen(10, 2, "0123456789\r\n中文中文中")
    pane.resize(5, 2)
    assert pane.text() == ["01234", "中文 "]
    assert_well_formed(pane)
    pane.resize(12, 3)
    assert all(len(row) == 12 for row in pane.rows_at())


def test_resize_in_the_alternate_screen_keeps_the_main_screen() -> None:
    pane = screen(10, 4, "one\r\ntwo\r\nthree\x1b[?1049hfull")
    pane.resize(8, 2)
    pane.feed("\x1b[?1049l")
    pane.catch_up()
    assert lines(pane) == ["two", "three"]


def test_resize_applies_text_printed_for_the_old_size_first() -> None:
    pane = PaneScreen(10, 2)
    pane.feed("0123456789abc")
    pane.resize(20, 2)
    assert lines(pane) == ["0123456789", "abc"]


# ------------------------------------------------------------ snapshots


def test_restore_returns_to_the_snapshot_moment() -> None:
    pane = screen(12, 3, numbered(1, 10), "\x1b[32mgreen")
    snap = pane.snapshot()
    before = (pane.rows_at(), pane.rows_at(pane.max_scroll), pane.cursor, pane.max_scroll)
    pane.feed("\x1b[0m more\r\n" + numbered(11, 20) + "\x1b[?1049hfull screen")
    pane.catch_up()
    pane.restore(snap)
    assert (pane.rows_at(), pane.rows_at(pane.max_scroll), pane.cursor, pane.max_scroll) == before
    pane.feed("!")
    pane.catch_up()
    assert pane.rows_at()[2][5] == Cell("!", fg="green")  # the colour state came back too


def test_snapshot_taken_mid_sequence_continues_the_same_way() -> None:
    rest = "1;44mX\x1b[0m\r\nafter"
    whole = screen(10, 3, "a\x1b[3", rest)
    pane = screen(10, 3, "a\x1b[3")
    snap = pane.snapshot()
    pane.feed("garbage\x1b[2J")
    pane.catch_up()
    pane.restore(snap)
    pane.feed(rest)
    pane.catch_up()
    assert pane.rows_at() == whole.rows_at()


def test_a_snapshot_can_be_restored_twice() -> None:
    pane = screen(10, 2, "base")
    snap = pane.snapshot()
    for _ in range(2):
        pane.feed("\rchanged")
        pane.catch_up()
        pane.restore(snap)
        assert lines(pane) == ["base", ""]


def test_snapshot_in_the_alternate_screen_can_still_leave_it() -> None:
    pane = screen(10, 2, "\x1b[?1049hfull screen")
    snap = pane.snapshot()
    pane.restore(snap)
    pane.feed("\x1b[?1049lback")
    pane.catch_up()
    assert not pane.in_alt_screen
    assert lines(pane) == ["back", ""]


def test_restore_rejects_something_else() -> None:
    with pytest.raises(TypeError):
        PaneScreen(10, 2).restore(object())


# ------------------------------------------------------------ flooding


def flood(cols: int, rows: int, text: str, chunk: int, **catch_up: object) -> PaneScreen:
    pane = PaneScreen(cols, rows, history=2000)
    for start in range(0, len(text), chunk):
        pane.feed(text[start:start + chunk], float(start))
        if start % (chunk * 5) == 0:
            pane.catch_up(**catch_up)  # type: ignore[arg-type]
    pane.catch_up(**catch_up)  # type: ignore[arg-type]
    return pane


@pytest.mark.parametrize("cols,rows", [(80, 24), (20, 5), (7, 3)])
def test_skipping_a_line_backlog_shows_exactly_what_emulating_it_all_shows(
    cols: int, rows: int
) -> None:
    text = "".join(
        f"\x1b[3{i % 8}m{i} " + "word " * (i % 13) + "\x1b[K\x1b[0m\r\n" for i in range(5000)
    )
    skipped = flood(cols, rows, text, 4096, budget=1000)
    full = flood(cols, rows, text, 4096, skip=False)
    assert skipped.skipped > 0
    assert skipped.rows_at() == full.rows_at()
    assert skipped.cursor == full.cursor
    # History marks the gap with a reverse-video line, cut to the pane's width.
    history = [row for s in range(skipped.max_scroll + 1) for row in skipped.rows_at(s)]
    gaps = [row_text(row).rstrip() for row in history if row[0].reverse]
    assert gaps and all(gap.startswith("[") for gap in gaps)
    if cols >= 60:
        assert re.fullmatch(r"\[\d+ lines skipped here; the recording has everything\]", gaps[0])


def test_a_flood_is_skipped_by_default_and_still_shows_the_right_screen() -> None:
    text = "y\r\n" * 200_000 + "".join(f"last {i}\r\n" for i in range(30))
    pane = PaneScreen(40, 10)
    pane.feed(text)
    pane.catch_up()
    assert pane.skipped > len(text) * 0.9
    assert lines(pane) == [f"last {i}" for i in range(21, 30)] + [""]


def test_backlog_that_moves_the_cursor_is_never_skipped() -> None:
    text = "".join(f"\x1b[{i % 3 + 1};1Hrow {i}\r\n" for i in range(3000))
    pane = flood(30, 5, text, 4096, budget=100)
    assert pane.skipped == 0
    assert pane.rows_at() == flood(30, 5, text, 4096, skip=False).rows_at()


def test_colours_from_a_skipped_backlog_still_apply() -> None:
    pane = PaneScreen(10, 3)
    pane.feed("plain\r\n" * 100 + "\x1b[35m" + "tail\r\n" * 100 + "x")
    pane.catch_up(budget=10)
    assert pane.skipped > 0
    assert pane.rows_at()[2][0] == Cell("x", fg="magenta")


def test_a_backlog_beyond_max_pending_is_dropped_while_feeding() -> None:
    pane = PaneScreen(20, 3, max_pending=10_000)
    for i in range(1000):
        pane.feed(f"chunk {i}\r\n")
    assert pane.pending <= 10_000 + 20
    pane.catch_up()
    assert lines(pane)[:2] == ["chunk 998", "chunk 999"]
    assert pane.skipped > 0


# ------------------------------------------------------------ golden screens


def golden_cases() -> list[Path]:
    return sorted(GOLDEN.glob("*.raw"))


@pytest.mark.parametrize("raw", golden_cases(), ids=lambda p: p.stem)
@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_golden_screens_match_a_real_terminal(raw: Path, chunk: int) -> None:
    """Bytes captured from real programs through a pty show what tmux showed
    for them (tests/golden/capture.py), minus what we never show (bidi
    controls and the like)."""
    size = raw.stem.rsplit(".", 1)[1]
    cols, rows = map(int, size.split("x"))
    expected = raw.with_suffix(".txt").read_text().split("\n")[:rows]
    pane = PaneScreen(cols, rows)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    data = raw.read_bytes()
    for start in range(0, len(data), chunk):
        pane.feed(decoder.decode(data[start:start + chunk]), float(start))
        pane.catch_up()
    shown = [unicodedata.normalize("NFC", line) for line in lines(pane)]
    assert shown == [unicodedata.normalize("NFC", printable(line)).rstrip() for line in expected]
    assert not pane.in_alt_screen
    assert_well_formed(pane)


def test_golden_colours_survive() -> None:
    pane = PaneScreen(80, 24)
    pane.feed((GOLDEN / "ls-color.80x24.raw").read_bytes().decode())
    pane.catch_up()
    row = pane.rows_at()[0]
    text = row_text(row)
    etc = row[text.index("etc/")]
    assert etc.fg == "blue" and etc.bold  # ls colours directories bold blue


def test_golden_less_leaves_its_screen_out_of_history() -> None:
    pane = PaneScreen(70, 15)
    pane.feed((GOLDEN / "less-quit.70x15.raw").read_bytes().decode())
    pane.catch_up()
    everything = [line for s in range(pane.max_scroll + 1) for line in lines(pane, s)]
    assert not any(line.strip() == "14" for line in everything)


# ------------------------------------------------------------ lines counted back


def test_tail_row_is_where_the_newest_output_ends() -> None:
    ended = screen(20, 10, "a\r\nb\r\nc\r\n")  # cursor on the empty row below c
    assert ended.tail_row() == 2
    progress = screen(20, 10, "a\r\nb\r\n50%")  # cursor on the row being written
    assert progress.tail_row() == 2
    full_screen = screen(20, 10, "\x1b[10;1Hbottom\x1b[3;1H")  # cursor above what is written
    assert full_screen.tail_row() == 2
    assert screen(20, 10).tail_row() == 0


def test_rows_back_and_the_last_line_printed_by_a_time() -> None:
    pane = PaneScreen(10, 3, history=20)
    for i in range(8):
        pane.feed(f"t{i}\r\n", float(i))
    pane.catch_up(skip=False)
    # Screen: t6, t7, an empty row; history t0..t5. Line 1 back is t7.
    assert [row_text(r).rstrip() for r in pane.rows_back(1, 2)] == ["t6", "t7"]
    assert [row_text(r).rstrip() for r in pane.rows_back(9, 2)] == ["", "t0"]
    assert pane.last_printed_by(7.0) == 1
    assert pane.last_printed_by(6.5) == 2
    assert pane.last_printed_by(2.0) == 6  # in history
    assert pane.last_printed_by(-1.0) is None
    assert pane.time_back(2) == 6.0


def test_search_slice_scans_a_bounded_number_of_lines() -> None:
    pane = screen(20, 5, numbered(0, 99))
    hit, scanned, going_on = pane.search_slice(re.compile("line 10$"), 0, True, limit=30)
    assert hit is None and scanned == 30 and going_on == 30
    hit, scanned, going_on = pane.search_slice(re.compile("line 10$"), going_on, True, limit=100)
    assert hit is not None and hit.line == 90 and going_on is None
    hit, _, going_on = pane.search_slice(re.compile("nowhere"), 0, True, limit=1000)
    assert hit is None and going_on is None


def test_catch_up_keeping_holds_as_many_lines_as_asked() -> None:
    pane = PaneScreen(20, 5, history=3000)
    pane.feed(numbered(0, 9999), 1.0)
    pane.catch_up_keeping(2005)
    assert pane.history_used >= 2000
    assert lines(pane)[-2] == "line 9999"
    assert lines(pane, 2000)[-1] == "line 8000"


# ------------------------------------------------------------ flooding: every kind of line


def pyte_display(cols: int, rows: int, text: str) -> tuple[list[str], tuple[int, int]]:
    """What plain pyte shows for `text`: the oracle for our fast paths."""
    import pyte

    oracle = pyte.Screen(cols, rows)
    pyte.Stream(oracle).feed(text)
    return oracle.display, (oracle.cursor.x, oracle.cursor.y)


def staircase(count: int) -> str:
    """Lines ended by LF alone (stty -onlcr): each starts where the last ended."""
    return "".join(f"{i % 10}" * (i % 7) + "\n" for i in range(count))


@pytest.mark.parametrize("cols,rows", [(80, 24), (20, 5), (7, 3)])
@pytest.mark.parametrize("wrap", ["", "\x1b[?7l"], ids=["wrap", "nowrap"])
def test_skipping_lf_only_lines_shows_exactly_what_emulating_it_all_shows(
    cols: int, rows: int, wrap: str
) -> None:
    # `yes ab` with -onlcr, and lines of other lengths: the column walks right and wraps.
    for text in (wrap + "ab\n" * 5000, wrap + staircase(5000),
                 wrap + "".join(f"\x1b[3{i % 8}m{i}\x1b[K\n" for i in range(2000))):
        skipped = flood(cols, rows, text, 4096, budget=1000)
        full = flood(cols, rows, text, 4096, skip=False)
        assert skipped.skipped > len(text) / 2
        assert skipped.rows_at() == full.rows_at()
        assert skipped.cursor == full.cursor


def test_skipping_mixed_line_endings_and_wide_characters_is_exact() -> None:
    text = "".join(
        ("漢字" * (i % 5) + "\n") if i % 3 == 0 else (f"{i}\r" + "x" * (i % 11) + "\n")
        for i in range(3000)
    )
    skipped = flood(13, 4, text, 4096, budget=500)
    full = flood(13, 4, text, 4096, skip=False)
    assert skipped.skipped > 0
    assert skipped.rows_at() == full.rows_at()
    assert skipped.cursor == full.cursor


def test_skipping_in_newline_mode_is_exact() -> None:
    text = "\x1b[20h" + staircase(4000)  # LNM: LF returns the carriage too
    skipped = flood(20, 5, text, 4096, budget=500)
    full = flood(20, 5, text, 4096, skip=False)
    assert skipped.skipped > 0
    assert skipped.rows_at() == full.rows_at() and skipped.cursor == full.cursor


@pytest.mark.parametrize("seed", range(24))
def test_skipping_random_plain_output_is_exact(seed: int) -> None:
    import random

    rng = random.Random(seed)
    words = ["ab", "x" * 30, "漢", "e\u0301", "\n", "\n", "\r", "\r\n", "\x1b[1;31m", "\x1b[0m",
             "\x1b[K", "\x07", "\t", "\b", "\x1b[2A"]
    weights = [20, 3, 2, 1, 30, 0, 3, 10, 2, 2, 1, 1, 1, 1, 1 if seed % 4 == 0 else 0]
    prefix = rng.choice(["", "\x1b[?7l", "\x1b[20h"])
    text = prefix + "".join(rng.choices(words, weights, k=3000))
    cols, rows = rng.choice([(1, 1), (3, 2), (10, 4), (80, 24)])
    chunk = rng.choice([3, 7, 512, 4096])
    skipped = flood(cols, rows, text, chunk, budget=rng.choice([0, 50, 1000]))
    full = flood(cols, rows, text, chunk, skip=False)
    assert skipped.rows_at() == full.rows_at()
    assert skipped.cursor == full.cursor


@pytest.mark.parametrize("seed", range(16))
def test_a_run_of_small_chunks_is_weighed_as_each_of_them_would_be(seed: int) -> None:
    # A replay queues thousands of small events: the flood guard looks at a
    # run of them as one text. What it may skip must be what looking at
    # each chunk on its own gives, wherever the chunks are cut (inside
    # escape sequences too).
    import random

    rng = random.Random(seed)
    words = ["ab", "x" * 30, "漢", "\n", "\r\n", "\r", "\x1b[1;31m", "\x1b[0m", "\x1b[K",
             "\t", "\b", "\x1b[2A", "\x0e"]
    weights = [20, 3, 2, 10, 30, 3, 3, 3, 1, 1, 1, 1 if seed % 4 == 0 else 0,
               1 if seed % 5 == 0 else 0]
    text = "".join(rng.choices(words, weights, k=2000))
    cuts = sorted(rng.sample(range(1, len(text)), 300))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]

    def backlog(look_at_each: bool) -> Backlog:
        queue = Backlog()
        for piece in pieces:
            queue.append(0.0, piece)
        if look_at_each:
            for chunk in queue:
                chunk.facts  # noqa: B018
        return queue

    merged, each = backlog(False), backlog(True)
    assert not any(chunk.looked_at for chunk in merged)
    for keep in (0, 40, 2000):
        for cursor in (Cursor(0, 80, 24, True, False, True), Cursor(5, 7, 3, True, False, True),
                       Cursor(3, 10, 4, False, False, True), Cursor(0, 20, 5, True, True, True)):
            assert merged.skip_point(keep, cursor) == each.skip_point(keep, cursor)
    # The budget is an estimate: escapes cut across chunks may count once more or less.
    assert merged.affordable() == pytest.approx(each.affordable(), rel=0.01)


@pytest.mark.parametrize("text", [
    "\x1b[?7l" + "0123456789" * 5_000 + "END",  # one long line, autowrap off
    "\x1b[?7l" + "".join("y" * 500 + "\r\n" for _ in range(30)),
    "\x1b[?7lab\x1b[5Gcd" + "z" * 100 + "\x1b[?7hwrapped" * 5,
    "ab\n" * 5000,  # LF alone
    "progress 12%\r" * 5000 + "done",  # CR alone
])
def test_fast_paths_show_what_pyte_shows(text: str) -> None:
    pane = screen(40, 6, text)
    display, (x, y) = pyte_display(40, 6, text)
    assert lines(pane) == [line.rstrip() for line in display]
    assert pane.cursor == (min(x, 39), y)


@pytest.mark.alone
def test_a_long_line_without_autowrap_emulates_in_a_few_milliseconds() -> None:
    pane = PaneScreen(80, 24)
    pane.feed("\x1b[?7l" + "x" * 5_000_000 + "!")
    started = time.perf_counter()
    pane.catch_up()
    # Emulating it char by char took 19 s; the row it ends on is all there is.
    assert time.perf_counter() - started < 1.0
    assert lines(pane)[0] == "x" * 79 + "!"


def test_catch_up_with_seconds_stops_in_time_and_goes_on_later() -> None:
    # Cursor moves on every line: nothing may be skipped, all must be emulated.
    text = "".join(f"\x1b[{i % 20 + 1};{i % 50 + 1}H\t漢{i}\b\r\n" for i in range(3000))
    bounded = PaneScreen(80, 24)
    bounded.feed(text)
    calls, slowest = 0, 0.0
    while bounded.pending:
        started = time.perf_counter()
        bounded.catch_up(seconds=0.002)
        slowest = max(slowest, time.perf_counter() - started)
        calls += 1
    assert calls > 5, "one call emulated everything: not bounded"
    # A generous margin over 2 ms: the machine running the tests is shared.
    assert slowest < 0.1
    full = PaneScreen(80, 24)
    full.feed(text)
    full.catch_up()
    assert bounded.rows_at() == full.rows_at() and bounded.cursor == full.cursor


@pytest.mark.alone
def test_finding_what_to_skip_costs_little_however_big_the_backlog() -> None:
    pane = PaneScreen(120, 40)
    data = "ab\n" * 2_600_000  # 8 MB: what a flooding pane queues between two frames
    for start in range(0, len(data), 65536):
        pane.feed(data[start:start + 65536], 0.0)
    started = time.perf_counter()
    pane.catch_up(seconds=0.01)
    assert time.perf_counter() - started < 0.2  # was 0.5 s of scanning the whole backlog
    assert pane.pending < 65536 and pane.skipped > len(data) * 0.9


def test_a_read_ending_inside_a_sequence_neither_stops_skipping_nor_fools_it() -> None:
    # Reads end anywhere: here inside colour sequences, and once inside a
    # cursor movement whose end comes with the next read.
    lines_ = "".join(f"\x1b[3{i % 8}m{i}\x1b[0m\r\n" for i in range(3000))
    for text, chunk in ((lines_, 4093), (lines_[:30_000] + "\x1b[" + "H" + "moved\r\n"
                                          + lines_[30_000:31_000], 30_001)):
        skipped = flood(30, 5, text, chunk, budget=200)
        full = flood(30, 5, text, chunk, skip=False)
        assert skipped.rows_at() == full.rows_at() and skipped.cursor == full.cursor
    assert flood(30, 5, lines_, 4093, budget=200).skipped > len(lines_) / 2


def test_a_cursor_movement_split_between_two_reads_is_seen() -> None:
    # The first read ends in ESC, the next begins "[H": a cursor home that
    # brings the old lines back into play, so nothing before it may be skipped.
    reads = ["".join(f"old {i}\r\n" for i in range(100)) + "\x1b",
             "[Hmoved\r\nnew 1\r\nnew 2\r\n"]
    skipped, full = PaneScreen(20, 5), PaneScreen(20, 5)
    for read in reads:
        skipped.feed(read)
        full.feed(read)
    skipped.catch_up(budget=0)
    full.catch_up(skip=False)
    assert lines(full)[:3] == ["moved6", "new 17", "new 28"]  # over "old 96" .. "old 98"
    assert skipped.rows_at() == full.rows_at() and skipped.cursor == full.cursor


@pytest.mark.alone
def test_a_resize_with_seconds_does_not_wait_for_the_whole_backlog() -> None:
    # Nothing here may be skipped (the cursor moves on every line).
    text = "".join(f"\x1b[{i % 20 + 1};1H\t漢{i}\r\n" for i in range(20_000))
    pane = PaneScreen(80, 24)
    pane.feed(text)
    started = time.perf_counter()
    pane.resize(40, 10, seconds=0.01)
    assert time.perf_counter() - started < 0.5  # all of it takes seconds
    assert (pane.cols, pane.rows) == (40, 10) and pane.pending > 0
    pane.catch_up()
    assert_well_formed(pane)


@pytest.mark.alone
def test_colours_from_a_long_skipped_backlog_cost_little_and_still_apply() -> None:
    # Colours without a reset: each line changes them; what they add up to
    # must still hold after skipping, without replaying every one.
    text = "\x1b[1m" + "".join(f"\x1b[3{i % 8}m{i}\x1b[4{i % 3}m\r\n" for i in range(100_000))
    skipped = PaneScreen(30, 5)
    skipped.feed(text + "end")
    started = time.perf_counter()
    skipped.catch_up()
    assert time.perf_counter() - started < 0.5  # replaying 200,000 colours took seconds
    full = flood(30, 5, text + "end", 65536, skip=False)
    assert skipped.skipped > len(text) / 2
    assert skipped.rows_at() == full.rows_at()
    assert skipped.rows_at()[4][0] == Cell("e", fg="white", bg="black", bold=True)


def small_events(cols: int, rows: int, text: str, **catch_up: object) -> PaneScreen:
    """A replay's rebuild: many small events queued, then one catch-up."""
    pane = PaneScreen(cols, rows, history=2000)
    for start in range(0, len(text), 64):
        pane.feed(text[start:start + 64], float(start))
    pane.catch_up(**catch_up)  # type: ignore[arg-type]
    return pane


@pytest.mark.parametrize("feeder", [lambda c, r, t, **k: flood(c, r, t, 4096, **k),
                                    small_events], ids=["reads", "events"])
def test_lines_with_tabs_and_backspaces_ended_by_cr_lf_are_skipped_exactly(feeder) -> None:
    # tcpdump -XX indents its hex rows with a TAB; a progress line may back up
    # with BS. Ended by CR LF, the column is 0 after them whatever they did:
    # a backlog of them is skipped (seeking a replay of a capture was slow),
    # and the screen is what emulating it all shows.
    rows = "".join(f"\t0x{i % 4096:04x}:  4500 0054 {i:04x}  ..T.\r\n"
                   f"{i} done\b\b\b\bDONE\r\n" for i in range(2000))
    for text in (rows, rows + "\tpartial"):
        skipped = feeder(40, 6, text, budget=500)
        full = feeder(40, 6, text, skip=False)
        assert skipped.skipped > len(text) / 2
        assert skipped.rows_at() == full.rows_at()
        assert skipped.cursor == full.cursor


def test_a_plain_line_drawn_from_its_text_is_the_row_its_cells_draw():
    from autotrace.view import render

    screen = PaneScreen(30, 8, history=100)
    screen.feed("plain 123\r\n\x1b[31mred\x1b[0m and not\r\n"
                "wide 世界 here\r\n\x1b[44m\x1b[2Kerased blue\x1b[0m\r\n"
                + "".join(f"line {n} of many, long enough to wrap here\r\n" for n in range(12))
                + "\tTAB\r\nlast")
    screen.catch_up()
    lines = screen.lines_back(0, screen.total_lines)
    plain = 0
    for line in lines:
        for left, cols in ((0, 30), (0, 40), (4, 20), (28, 10), (35, 10)):
            text = screen.plain_text_of(line, left, cols)
            cells = screen.cells_of(line)[left:left + cols]
            slow = render.cells_to_line(cells, cols, True)
            if text is None:
                continue
            plain += 1
            assert len(text) == cols
            assert str(render.plain_row(text)) == str(slow), (line, left, cols)
    assert plain > 60  # history tuples and screen lines took the plain way
    styled = [screen.plain_text_of(line, 0, 30) for line in lines
              if line is not None and "red" in row_text(screen.cells_of(line))]
    assert styled == [None]
    assert all(screen.plain_text_of(line, 0, 30) is None for line in lines
               if line is not None and ("世" in row_text(screen.cells_of(line))
                                        or "blue" in row_text(screen.cells_of(line))))


def _emulated_state(pane: PaneScreen) -> tuple[object, ...]:
    emulator = pane._emulator
    shown = {y: (dict(line), line.t, line.default) for y, line in emulator.buffer.items()
             if line}
    return (shown, list(emulator.history_lines), list(emulator.history_times),
            emulator.history_dropped, emulator.cursor.x, emulator.cursor.y,
            emulator.cursor.attrs, emulator.in_alt)


LINE_PIECES = ["", "x", "seq 12345", "a b  ", " " * 7, "w" * 12, "v" * 24, "u" * 25,
               "\x1b[31mred\x1b[0m", "\x1b[1;7r", "\x1b[r", "tab\there", "\x1b[?1049h",
               "\x1b[?1049l", "\x1b[?7l", "\x1b[?7h", "\x1b[4h", "\x1b[4l", "\x1b[2;5H",
               "\x1b[44m", "\x1b[K", "\x1b(0q\x1b(B", "\x1b[J", "\r", "é"]


@pytest.mark.parametrize("seed", range(40))
def test_lines_that_scroll_through_in_one_step_leave_what_one_at_a_time_leaves(
        seed: int, monkeypatch) -> None:
    """The bulk path (lines_through) against pyte's own draw and scroll:
    random lines (short, exact width, wrapping, empty, trailing blanks) with
    colours, scrolling regions, the alternate screen, autowrap off, insert
    mode and other charsets among them; the same screen, history, history
    times and cursor, fed in the same pieces."""
    import random

    import autotrace.view.screen as screen_module

    rng = random.Random(seed)
    pieces = []
    for _ in range(rng.randrange(20, 120)):
        text = "".join(rng.choice(LINE_PIECES) if rng.random() < 0.3
                       else rng.choice(LINE_PIECES[:8]) for _ in range(rng.randrange(1, 4)))
        pieces.append(text + ("\r\n" if rng.random() < 0.9 else "\n"))
        if rng.random() < 0.1:  # modes back to plain, then a burst of plain lines
            pieces.append("\x1b[r\x1b[?7h\x1b[4l\x1b(B\x1b[?1049l\r\n" + "".join(
                rng.choice(LINE_PIECES[:8]) + "\r\n" for _ in range(rng.randrange(2, 12))))
    chunks, at = [], 0
    text = "".join(pieces)
    while at < len(text):
        size = rng.randrange(1, 400)
        chunks.append((at / 100, text[at:at + size]))
        at += size
    cols, rows, history = 12, rng.randrange(1, 7), rng.choice([0, 5, 100])

    def run() -> tuple[object, ...]:
        pane = PaneScreen(cols, rows, history=history)
        for t, chunk in chunks:
            pane.feed(chunk, t)
            if seed % 2:
                pane.catch_up(skip=False)
            else:  # in timed pieces, as the live view emulates
                while pane.pending:
                    pane.catch_up(skip=False, seconds=1.0)
        return _emulated_state(pane)

    through = []
    original = screen_module._Emulator.lines_through
    monkeypatch.setattr(screen_module._Emulator, "lines_through",
                        lambda self, texts: (through.append(texts), original(self, texts)))
    bulk = run()
    assert through, "the one-step path was taken"
    monkeypatch.setattr(screen_module, "_PLAIN_LINES", re.compile(r"(?!)"))
    assert run() == bulk


def test_a_flood_of_plain_lines_takes_the_one_step_path() -> None:
    """So the test above compares two paths: seq's output goes through lines_through."""
    import autotrace.view.screen as screen_module

    calls = []
    original = screen_module._Emulator.lines_through

    def counting(self, texts):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        original(self, texts)

    pane = PaneScreen(80, 24, history=1000)
    screen_module._Emulator.lines_through = counting  # type: ignore[method-assign]
    try:
        pane.feed("".join(f"{i}\r\n" for i in range(1, 3001)), 1.0)
        pane.catch_up(skip=False)
    finally:
        screen_module._Emulator.lines_through = original  # type: ignore[method-assign]
    assert sum(calls) > 2900
    assert lines(pane)[-2:] == ["3000", ""] and pane.text_of(0).rstrip() == "1978"


@pytest.mark.parametrize("text", [
    # RI makes empty lines; DECSCNM set on the alternate screen leaves the main
    # screen's empty lines with their old (not reversed) default.
    "\x1bM\x1b[?1049h\x1b[?5h\x1b[?1049l\x1b[3;1H\x1b[27mab\r\ncd\r\n",
    "\x1bM\x1b[?1049h\x1b[?5h\x1b[?1049l\x1b[3;1Hab\r\n\r\n",
])
def test_lines_through_a_left_over_empty_line_draw_as_pyte_would(text: str, monkeypatch) -> None:
    import autotrace.view.screen as screen_module

    def run() -> tuple[object, ...]:
        pane = PaneScreen(4, 3, history=10)
        pane.feed(text, 1.0)
        pane.catch_up(skip=False)
        return _emulated_state(pane) + (pane.live_cells(0), pane.live_cells(1))

    bulk = run()
    monkeypatch.setattr(screen_module, "_PLAIN_LINES", re.compile(r"(?!)"))
    assert run() == bulk


def test_where_lines_cannot_scroll_through_the_one_step_pattern_is_not_tried(
        monkeypatch) -> None:
    """Under a scrolling region (apt's progress bar) each line would otherwise
    scan the rest of a 64 KiB read again: quadratic."""
    import autotrace.view.screen as screen_module

    tries = []

    class Counting:
        def match(self, *args):  # type: ignore[no-untyped-def]
            tries.append(args[1])
            return screen_module._PLAIN_LINES_PATTERN.match(*args)

    monkeypatch.setattr(screen_module, "_PLAIN_LINES_PATTERN", screen_module._PLAIN_LINES,
                        raising=False)
    monkeypatch.setattr(screen_module, "_PLAIN_LINES", Counting())
    pane = PaneScreen(200, 50, history=100)
    pane.feed("\x1b[1;49r\x1b[49;1H" + "".join(f"{i}\r\n" for i in range(5000)), 1.0)
    pane.catch_up(skip=False)
    assert lines(pane)[-3:] == ["4999", "", ""]  # the region ends a row above the bottom
    assert tries == []
