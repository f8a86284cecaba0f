"""Lenses (view/lenses.py) over crafted rows, and how the view draws them."""

from __future__ import annotations

from curtsies.termformatconstants import BG_COLORS, FG_COLORS

from autotrace.events import OUTPUT, Event
from autotrace.view import lenses, render
from autotrace.view.lenses import (
    CALL,
    FAILED,
    FAILED_CALL,
    RCODE,
    TRUNCATED,
    Span,
    dns_record_lens,
    lens_for,
    strace_lens,
    tcpdump_lens,
)
from autotrace.view.multipane import MultiPaneView
from autotrace.view.screen import Cell


def words(text: str, spans: tuple[Span, ...]) -> list[tuple[str, str]]:
    return [(text[span.start:span.end], span.style) for span in spans]


# ---------------------------------------------------------------- strace


def test_failed_call_stands_out_and_names_are_emphasised() -> None:
    row = 'openat(AT_FDCWD, "/etc/nope", O_RDONLY) = -1 ENOENT (No such file or directory)'
    assert words(row, strace_lens(row)) == [
        ("openat", FAILED_CALL), ("= -1 ENOENT (No such file or directory)", FAILED)]


def test_successful_call_has_only_its_name_emphasised() -> None:
    row = 'openat(AT_FDCWD, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 3'
    assert words(row, strace_lens(row)) == [("openat", CALL)]


def test_pid_prefix_and_time_stamps_are_skipped() -> None:
    row = ("[pid  4242] 12:00:01.123456 connect(3, {sa_family=AF_INET, sin_port=htons(53)}, 16)"
           " = -1 ECONNREFUSED (Connection refused)")
    assert words(row, strace_lens(row)) == [
        ("connect", FAILED_CALL), ("= -1 ECONNREFUSED (Connection refused)", FAILED)]
    assert words("4242  1700000000.5 setns(3, CLONE_NEWNET) = 0",
                 strace_lens("4242  1700000000.5 setns(3, CLONE_NEWNET) = 0")) == [
        ("setns", CALL)]


def test_resumed_calls_and_strace_messages() -> None:
    row = '<... connect resumed>) = -1 ECONNREFUSED (Connection refused)'
    assert words(row, strace_lens(row))[0] == ("connect", FAILED_CALL)
    # Would block is no failure: a non-blocking connect under way, a read with nothing yet.
    for errno in ("EINPROGRESS (Operation now in progress)", "EAGAIN (Resource unavailable)"):
        row = f'connect(14, {{sa_family=AF_INET}}, 16) = -1 {errno}'
        assert words(row, strace_lens(row)) == [("connect", CALL)]
    assert strace_lens("strace: Process 42 attached") == ()
    assert strace_lens("+++ exited with 0 +++") == ()
    assert strace_lens("--- SIGCHLD {si_signo=SIGCHLD} ---") == ()


def test_a_wrapped_rows_tail_still_shows_the_failure() -> None:
    # A long call wraps: its result is on a row of its own, without the name.
    row = 'ry", O_RDONLY) = -1 EACCES (Permission denied)'
    assert words(row, strace_lens(row)) == [("= -1 EACCES (Permission denied)", FAILED)]


# ---------------------------------------------------------------- tcpdump


def test_truncated_answer_spells_tc_out() -> None:
    row = "    127.0.0.153.53 > 127.0.0.1.40279: 8948*-| q: A? big.test. 0/0/0 (26)"
    spans = tcpdump_lens(row)
    assert spans == (Span(row.index("|"), row.index("|") + 1, TRUNCATED, " TRUNCATED"),)


def test_error_rcodes_are_coloured() -> None:
    for rcode in ("NXDomain", "ServFail", "Refused"):
        row = f"22:49:27.489978 IP 127.9.9.9.53 > 127.0.0.1.44037: 61583 {rcode}*- 0/0/1 (38)"
        assert words(row, tcpdump_lens(row)) == [(rcode, RCODE)]
    both = "IP 127.9.9.9.53 > 127.0.0.1.44037: 7 ServFail-| 0/0/0 (12)"
    assert [style for _, style in words(both, tcpdump_lens(both))] == [TRUNCATED, RCODE]


def test_tcp_dns_and_plain_lines_are_left_alone() -> None:
    tcp = ("127.0.0.153.53 > 127.0.0.1.44690: Flags [P.], seq 1:1629, ack 29, win 64, "
           "length 1628 8948*- q: A? big.test. 100/0/0 big.test. A 198.51.100.1,")
    assert tcpdump_lens(tcp) == ()
    truncated_tcp = tcp.replace("8948*-", "8948*-|")
    assert [s.style for s in tcpdump_lens(truncated_tcp)] == [TRUNCATED]
    for row in ("IP (tos 0x0, ttl 64, id 48469, offset 0, flags [DF], proto UDP (17), length 54)",
                "127.0.0.1.37881 > 127.0.0.153.53: 2525+ AAAA? big.test. (26)",
                "listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes",
                "IP 10.0.0.1.22 > 10.0.0.2.5000: Flags [P.], seq 1|2, length 0"):
        assert tcpdump_lens(row) == (), row


def test_dns_probe_lines_mark_tc_and_error_rcodes() -> None:
    answer = ("22:59:38.873908 udp 127.0.0.1:53 > 127.0.0.1:54632 answer id 59949 big.test. A "
              "NOERROR flags QR,AA,TC,RD answers 0 latency 1.6ms pid 16436 (dig)")
    assert words(answer, dns_record_lens(answer)) == [("TC", TRUNCATED)]
    nxdomain = answer.replace("NOERROR", "NXDOMAIN").replace("TC,", "")
    assert words(nxdomain, dns_record_lens(nxdomain)) == [("NXDOMAIN", RCODE)]
    icmp = ("22:58:39.771015 icmp 127.0.0.2 > 127.0.0.1 port-unreachable udp "
            "127.0.0.1:35087 > 127.0.0.2:53")
    assert words(icmp, dns_record_lens(icmp)) == [("port-unreachable", RCODE)]
    query = ("22:59:38.872305 udp 127.0.0.1:54632 > 127.0.0.1:53 query id 59949 big.test. A "
             "flags RD pid 16436 (dig)")
    assert dns_record_lens(query) == ()
    assert lens_for("@dns") is dns_record_lens and lens_for("@dns:10053") is dns_record_lens


# ---------------------------------------------------------------- which pane


def test_lens_is_picked_by_the_panes_program() -> None:
    assert lens_for("strace -f -e trace=%file,%network -p PID") is strace_lens
    assert lens_for("/usr/bin/strace -p 1") is strace_lens
    assert lens_for("sudo tcpdump -l -n -i any port 53") is tcpdump_lens
    assert lens_for("ip netns exec ns1 tcpdump -l -n") is tcpdump_lens
    assert lens_for("nsenter -t 42 -n tcpdump -l") is tcpdump_lens
    for command in ("getent hosts strace", "@net", "sh -c 'echo tcpdump'", "", "vmstat 1",
                    "echo 'unbalanced"):
        assert lens_for(command) is None, command


# ---------------------------------------------------------------- drawn


def cells(text: str) -> list[Cell]:
    return [Cell(char) for char in text]


def chunks(line) -> list[tuple[str, dict]]:
    return [(chunk.s, dict(chunk.atts)) for chunk in line.chunks]


def test_render_draws_spans_over_the_cells_and_replaces_text() -> None:
    row = "1.53 > 2.9: 8948*-| q: A?"
    line = render.cells_to_line(cells(row), 40, spans=tcpdump_lens(row))
    assert line.s.rstrip() == "1.53 > 2.9: 8948*- TRUNCATED q: A?"
    drawn = chunks(line)
    assert (" TRUNCATED", {"bold": True, "fg": FG_COLORS["black"], "bg": BG_COLORS["yellow"]}) \
        in drawn
    failed = 'stat("/x") = -1 ENOENT (No such file or directory)'
    line = render.cells_to_line(cells(failed), 60, spans=strace_lens(failed))
    assert chunks(line)[0] == ("stat", {"bold": True, "fg": FG_COLORS["red"]})
    assert line.s == failed.ljust(60)  # no text replaced: the row is as printed


def test_wide_characters_keep_spans_on_their_columns() -> None:
    text = 'open("/日本") = -1 ENOENT (x)'
    row: list[Cell] = []
    for char in text:
        row.append(Cell(char))
        if char in "日本":
            row.append(Cell(""))
    plain_text = lenses.row_text(row)
    assert len(plain_text) == len(row)
    spans = strace_lens(plain_text)
    assert [row[s.start].char for s in spans] == ["o", "="]


def view_with(command: str, output: str) -> MultiPaneView:
    view = MultiPaneView(100, 10, visible=1)
    view.add_pane(0, command, 98, 8)
    view.apply(Event(0.0, 0, OUTPUT, output))
    view.panes[0].screen.catch_up()
    return view


def frame_text(view: MultiPaneView) -> str:
    return "\n".join(str(row.s) if hasattr(row, "s") else str(row) for row in view.frame())


def bold_red_runs(view: MultiPaneView) -> list[str]:
    return [chunk.s for row in view.frame() for chunk in row.chunks
            if chunk.atts.get("fg") == FG_COLORS["red"] and chunk.atts.get("bold")]


def test_the_view_draws_a_lens_only_for_its_kind_of_pane_and_only_with_colours() -> None:
    failed = 'openat(AT_FDCWD, "/nope", O_RDONLY) = -1 ENOENT (No such file or directory)\r\n'
    strace = view_with("strace -p PID", failed)
    assert bold_red_runs(strace) == ["openat", "= -1 ENOENT (No such file or directory)"]
    strace.handle_key("l")  # colours off: lenses off too
    assert bold_red_runs(strace) == []
    assert "openat(AT_FDCWD" in frame_text(strace)
    assert bold_red_runs(view_with("cat log", failed)) == []
    answer = "IP 1.2.3.4.53 > 1.2.3.5.999: 8948 NXDomain*-| 0/0/0 (26)\r\n"
    tcpdump = view_with("tcpdump -l -n", answer)
    assert "8948 NXDomain*- TRUNCATED 0/0/0" in frame_text(tcpdump)
    tcpdump.handle_key("l")
    assert "8948 NXDomain*-| 0/0/0" in frame_text(tcpdump)


def test_colours_off_from_the_start_means_no_lenses() -> None:
    # `--colorsoff` builds the view with colours=False (commands/trace.py, replay.py).
    view = MultiPaneView(100, 10, visible=1, colours=False)
    view.add_pane(0, "strace -p PID", 98, 8)
    view.apply(Event(0.0, 0, OUTPUT, 'stat("/x") = -1 ENOENT (No such file or directory)\r\n'))
    view.panes[0].screen.catch_up()
    assert bold_red_runs(view) == []
    view.handle_key("l")
    assert bold_red_runs(view) == ["stat", "= -1 ENOENT (No such file or directory)"]
