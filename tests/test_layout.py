"""Layout: which panes show and where, as a pure function of count, size and zoom."""

from __future__ import annotations

import itertools

import pytest

from autotrace.view.layout import (
    MIN_PANE_COLS,
    MIN_PANE_ROWS,
    Rect,
    arrange,
    fits,
    shown_count,
    tile,
    visible_panes,
)

SIZES = [(80, 24), (81, 25), (200, 50), (120, 40), (37, 11), (20, 3), (3, 2), (1, 1)]


def cells(rect: Rect) -> set[tuple[int, int]]:
    return {(x, y) for x in range(rect.x, rect.x + rect.width)
            for y in range(rect.y, rect.y + rect.height)}


def assert_tiles_exactly(rects: list[Rect], cols: int, rows: int) -> None:
    covered: set[tuple[int, int]] = set()
    for rect in rects:
        mine = cells(rect)
        assert not covered & mine, f"{rect} overlaps another pane"
        covered |= mine
    assert covered == cells(Rect(0, 0, cols, rows)), "some cells belong to no pane"


@pytest.mark.parametrize("vertical", [False, True])
@pytest.mark.parametrize("cols,rows", SIZES)
@pytest.mark.parametrize("count", range(1, 8))
def test_panes_tile_the_area_exactly(count: int, cols: int, rows: int, vertical: bool) -> None:
    rects = tile(count, cols, rows, vertical)
    assert len(rects) == count
    assert_tiles_exactly(rects, cols, rows)


def test_one_pane_takes_the_whole_area() -> None:
    assert tile(1, 80, 24) == [Rect(0, 0, 80, 24)]


def test_two_panes_split_top_and_bottom_or_side_by_side_with_v() -> None:
    assert tile(2, 80, 24) == [Rect(0, 0, 80, 12), Rect(0, 12, 80, 12)]
    assert tile(2, 80, 24, vertical=True) == [Rect(0, 0, 40, 24), Rect(40, 0, 40, 24)]


def test_odd_sizes_give_the_main_pane_the_extra_row_or_column() -> None:
    assert tile(2, 81, 25) == [Rect(0, 0, 81, 13), Rect(0, 13, 81, 12)]
    assert tile(2, 81, 25, vertical=True) == [Rect(0, 0, 41, 25), Rect(41, 0, 40, 25)]


@pytest.mark.parametrize("count", range(3, 8))
def test_main_pane_keeps_the_top_half_and_tracers_share_the_rest(count: int) -> None:
    main, *tracers = tile(count, 120, 40)
    assert main == Rect(0, 0, 120, 20)
    assert all(r.y >= 20 for r in tracers)
    heights = {r.height for r in tracers}
    assert max(heights) - min(heights) <= 1  # an even grid
    for row in {r.y for r in tracers}:
        widths = [r.width for r in tracers if r.y == row]
        assert max(widths) - min(widths) <= 1


@pytest.mark.parametrize("count", range(3, 8))
def test_vertical_main_pane_keeps_the_left_half(count: int) -> None:
    main, *tracers = tile(count, 120, 40, vertical=True)
    assert main == Rect(0, 0, 60, 40)
    assert all(r.x >= 60 for r in tracers)


def test_three_tracers_sit_side_by_side_under_the_main_pane() -> None:
    assert tile(4, 80, 24) == [
        Rect(0, 0, 80, 12),
        Rect(0, 12, 27, 12),
        Rect(27, 12, 27, 12),
        Rect(54, 12, 26, 12),
    ]


def test_many_tracers_form_a_grid_when_the_area_has_room() -> None:
    rects = tile(7, 164, 40)
    assert fits(rects)
    assert len({r.y for r in rects[1:]}) == 2  # two rows of tracers


def test_default_shows_four_panes_main_first() -> None:
    assert visible_panes(7) == [0, 1, 2, 3]
    assert visible_panes(3) == [0, 1, 2]
    assert visible_panes(0) == []


def test_cycling_brings_every_hidden_pane_in_and_keeps_main() -> None:
    count, visible = 7, 4
    seen: set[int] = set()
    for offset in range(count - 1):
        panes = visible_panes(count, visible, offset)
        assert panes[0] == 0
        assert len(panes) == visible == len(set(panes))
        assert panes[1:] == sorted(panes[1:])
        seen.update(panes)
    assert seen == set(range(count))
    assert visible_panes(count, visible, count - 1) == visible_panes(count, visible, 0)


def test_cycling_moves_one_pane_at_a_time() -> None:
    before = set(visible_panes(6, 4, 0))
    after = set(visible_panes(6, 4, 1))
    assert len(before - after) == 1 and len(after - before) == 1


def test_zoom_shows_one_pane_over_the_whole_area() -> None:
    assert visible_panes(5, zoom=3) == [3]
    assert arrange(5, 80, 24, zoom=3) == {3: Rect(0, 0, 80, 24)}
    assert arrange(5, 80, 24, zoom=0, vertical=True) == {0: Rect(0, 0, 80, 24)}


def test_zoom_on_a_pane_that_does_not_exist_is_ignored() -> None:
    assert visible_panes(3, zoom=7) == [0, 1, 2]


def test_visible_limits_what_is_arranged() -> None:
    layout = arrange(7, 120, 40, visible=2, offset=4)
    assert list(layout) == [0, 5]
    assert layout[0] == Rect(0, 0, 120, 20)
    assert_tiles_exactly(list(layout.values()), 120, 40)


@pytest.mark.parametrize(
    "count,visible,offset,vertical",
    list(itertools.product(range(1, 8), (1, 2, 4, 7), (0, 1, 5), (False, True))),
)
def test_arrange_covers_the_area_with_the_visible_panes(
    count: int, visible: int, offset: int, vertical: bool
) -> None:
    layout = arrange(count, 100, 30, visible=visible, offset=offset, vertical=vertical)
    fitting = max(shown_count(count, 100, 30, visible, v) for v in {vertical, False})
    assert list(layout) == visible_panes(count, fitting, offset)
    assert_tiles_exactly(list(layout.values()), 100, 30)


def test_fits_detects_a_terminal_too_small() -> None:
    assert fits(arrange(4, 80, 24).values())
    assert not fits(tile(4, 80, 24))
    assert not fits(arrange(1, MIN_PANE_COLS - 1, 24).values())
    assert not fits(arrange(1, 80, MIN_PANE_ROWS).values())  # the title takes a row
    assert fits(arrange(1, MIN_PANE_COLS, MIN_PANE_ROWS + 1).values())
    assert not fits(arrange(1, 0, 0).values())


def test_content_rows_exclude_the_title_line() -> None:
    assert Rect(0, 0, 80, 12).content_rows == 11
    assert Rect(0, 0, 80, 0).content_rows == 0


# ---------------------------------------------------------------- small areas


def content_sizes(layout: dict[int, Rect]) -> list[tuple[int, int]]:
    return [(r.content_cols, r.content_rows) for r in layout.values()]


@pytest.mark.parametrize("vertical", [False, True])
@pytest.mark.parametrize("cols,rows", [(80, 22), (81, 22), (100, 30), (120, 38), (200, 48),
                                       (40, 6), (45, 60)])
@pytest.mark.parametrize("count", range(1, 8))
def test_no_pane_shown_is_smaller_than_the_minimum(count: int, cols: int, rows: int,
                                                   vertical: bool) -> None:
    layout = arrange(count, cols, rows, vertical=vertical)
    assert layout and 0 < len(layout) <= min(count, 4)
    for width, height in content_sizes(layout):
        assert width >= MIN_PANE_COLS and height >= MIN_PANE_ROWS, (width, height)
    assert_tiles_exactly(list(layout.values()), cols, rows)


def test_80x24_with_four_tracers_shows_main_and_one_tracer() -> None:
    # 22 rows between header and footer; two 40-column panes side by side
    # leave 39 for the one right of the separator.
    assert shown_count(5, 80, 22) == 2
    assert content_sizes(arrange(5, 80, 22)) == [(80, 10), (80, 10)]
    assert list(arrange(5, 80, 22, offset=2)) == [0, 3]


def test_a_wider_terminal_shows_more_panes_up_to_visible() -> None:
    assert shown_count(5, 82, 22) == 3
    assert shown_count(5, 124, 22) == 4
    assert shown_count(9, 300, 80) == 4
    assert shown_count(9, 300, 80, visible=9) > 4


def test_side_by_side_gives_way_to_stacking_when_stacking_shows_more() -> None:
    # 80 columns cannot hold two 40-column panes and a separator.
    assert list(arrange(3, 80, 30, vertical=True)) == [0, 1, 2]
    layout = arrange(2, 120, 30, vertical=True)
    assert [r.x for r in layout.values()] == [0, 60]


def test_when_one_pane_fits_every_pane_takes_its_turn() -> None:
    seen = [list(arrange(3, 50, 7, offset=offset)) for offset in range(3)]
    assert seen == [[0], [1], [2]]
    assert visible_panes(3, 1, 4) == [1]


def test_a_smaller_minimum_shows_more_panes() -> None:
    assert shown_count(5, 80, 22, minimum=(20, 3)) == 4
    layout = arrange(5, 80, 22, minimum=(20, 3))
    assert fits(layout.values(), (20, 3)) and not fits(layout.values())
