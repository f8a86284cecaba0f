"""Rules over strace text: failed calls on resolver files, refused connections,
setns (into which namespace), and port-53 traffic from a process other than the target."""

from __future__ import annotations

import re

from autotrace.findings.engine import PaneInfo, Rules
from autotrace.findings.model import ERROR, INFO, WARNING, Evidence, Finding

RESOLVER_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf")
FILE_ERRORS = ("ENOENT", "EACCES", "EPERM", "ELOOP", "ENOTDIR")
# `[pid  123] 12:00:00.123456 openat(AT_FDCWD, "/etc/hosts", O_RDONLY) = -1 ENOENT (...)`;
# the pid prefix appears with -f once there is more than one process.
CALL = re.compile(
    r"^(?:\[pid\s+(?P<pid>\d+)\] |(?P<bare>\d+) +)?(?:[\d:.]+ )?"
    r"(?:<\.\.\. (?P<resumed>\w+) resumed>|(?P<name>\w+)\()(?P<args>.*?)"
    r"(?:\s+= (?P<ret>-?\d+|\?|0x[0-9a-f]+)(?:<(?P<fdpath>[^>]*)>)?(?: (?P<errno>E[A-Z]+))?.*)?$")
UNFINISHED = " <unfinished ...>"
PORT_53 = re.compile(r"sin6?_port=htons\(53\)")
ADDRESS = re.compile(r'inet_(?:addr|pton)\((?:AF_INET6?, )?"([^"]+)"')
PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
NS_FD = re.compile(r"^(\d+)(?:<([^>]*)>)?")
NS_TYPES = {"CLONE_NEWNET": "network", "CLONE_NEWNS": "mount", "CLONE_NEWPID": "pid",
            "CLONE_NEWUTS": "uts", "CLONE_NEWIPC": "ipc", "CLONE_NEWUSER": "user",
            "CLONE_NEWCGROUP": "cgroup"}


class StraceRules(Rules):
    trigger = re.compile(r"= -1 E|setns|htons\(53\)|/ns/|<unfinished|resumed>")
    literals = ("= -1 E", "setns", "htons(53)", "/ns/", "<unfinished", "resumed>")

    def __init__(self, engine) -> None:
        super().__init__(engine)
        self.unfinished: dict[tuple[int, str | None], tuple[str, float, str]] = {}
        self.opened: dict[tuple[int, str | None, int], str] = {}  # (pane, pid, fd) -> path

    def line(self, pane: PaneInfo, t: float, text: str) -> None:
        match = CALL.match(text)
        if match is None:
            return
        pid = match["pid"] or match["bare"]
        if text.endswith(UNFINISHED):
            self.unfinished[(pane.index, pid)] = (match["name"] or "", t, text)
            return
        name, args = match["name"], match["args"]
        evidence: tuple[Evidence, ...] = (Evidence(pane.index, t, text),)
        if match["resumed"]:
            start = self.unfinished.pop((pane.index, pid), None)
            name = match["resumed"]
            if start is not None:
                args = start[2][:-len(UNFINISHED)] + args
                evidence = (Evidence(pane.index, start[1], start[2]), *evidence)
        self.call(pane, t, pid, name or "", args, match, evidence)

    def call(self, pane: PaneInfo, t: float, pid: str | None, name: str, args: str,
             match: re.Match[str], evidence: tuple[Evidence, ...]) -> None:
        errno, ret = match["errno"], match["ret"]
        who = f"pid {pid}" if pid else "the traced process"
        if errno:
            for path in RESOLVER_FILES:
                if f'"{path}"' in args and errno in FILE_ERRORS:
                    self.engine.report(Finding(
                        t, "strace.resolver-file", ERROR,
                        f"{name} of {path} failed with {errno} ({who})",
                        "the resolver cannot use a file it cannot open", evidence))
                    return
            if errno == "ECONNREFUSED":
                target = _address(args)
                self.engine.report(Finding(
                    t, "strace.refused", ERROR,
                    f"{name} refused (ECONNREFUSED){' by ' + target if target else ''} ({who})",
                    "nothing listens there, or a firewall rejects it", evidence))
                return
        if name in ("openat", "open") and ret and ret.isdigit() and "/ns/" in args:
            opened = re.search(r'"([^"]*/ns/[^"]*)"', args)
            if opened:
                self.opened[(pane.index, pid, int(ret))] = opened.group(1)
        if name == "setns" and ret == "0":
            self.setns(pane, t, pid, args, evidence)
        if name in ("connect", "sendto", "sendmsg") and PORT_53.search(args) and not errno \
                and "PID" not in pane.command.split():
            # This strace follows another process than the target (`strace -p 4242`,
            # a daemon): what it sends to port 53 is resolving on someone's behalf.
            # (The target's own children, under -f, are the target's lookups.)
            who = f"pid {pid}" if pid else "the process"
            self.engine.report(Finding(
                t, "strace.other-process-dns", WARNING,
                f"{who}, traced in pane {pane.index} and not the target, sends to port 53 "
                f"({_address(args) or 'a DNS server'})",
                "a helper or a daemon resolves on its behalf", evidence),
                once=f"{pane.index}:{pid}")

    def setns(self, pane: PaneInfo, t: float, pid: str | None, args: str,
              evidence: tuple[Evidence, ...]) -> None:
        fd_text, _, flags = args.partition(",")
        kind = next((what for flag, what in NS_TYPES.items() if flag in flags), "a")
        fd = NS_FD.match(fd_text.strip())
        into = ""
        if fd:
            into = fd.group(2) or self.opened.get((pane.index, pid, int(fd.group(1))), "")
        who = f"pid {pid}" if pid else "the traced process"
        self.engine.report(Finding(
            t, "strace.setns", INFO,
            f"{who} entered {kind} namespace{' ' + into if into else ''} (setns)",
            "what it sends from now on comes from that namespace's addresses", evidence))


def _address(args: str) -> str:
    address, port = ADDRESS.search(args), PORT.search(args)
    if not address:
        return ""
    return f"{address.group(1)}:{port.group(1)}" if port else address.group(1)
