"""At most K training processes per server; the other runs wait their turn, first come first served.

Every session that starts a run asks :class:`RunSlots` for one of K *slots*.
The shared state is the file system, not a Python object: a slot is an
exclusive ``fcntl.flock`` on one of K files ``slot-0.lock`` … in a folder, and
a run that found none free waits in line with a *ticket*: a file
``wait-<number>`` it holds locked, numbered from a counter file (``ticket``,
incremented under its own lock). Its place in the queue is one plus the number
of live tickets with a smaller number. Why files: nothing is kept in a module
(each session's run is its own, the server shares only what the OS shares), a
lock dies with the process that held it (a crashed server never leaves a slot
taken or a ticket in the way: a ticket file nobody holds is stale and is
removed), and a folder named by ``BACKPROP_RUN_DIR`` can share K between several
server processes on one machine.

K is ``BACKPROP_MAX_RUNS`` or, by default, the number of cores: a training
process keeps one core busy, and more of them than cores only makes every run
slower (and the pages with them). The default folder is one per server process
(under the system's temporary folder), so test processes and servers on one
machine do not share their slots.

Linux and macOS (``fcntl``); elsewhere every run gets a slot at once.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:     # Windows: no limit
    fcntl = None


def default_limit() -> int:
    try:
        return max(1, int(os.environ["BACKPROP_MAX_RUNS"]))
    except (KeyError, ValueError):
        return os.cpu_count() or 1


def default_folder() -> Path:
    if os.environ.get("BACKPROP_RUN_DIR"):
        return Path(os.environ["BACKPROP_RUN_DIR"])
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"backprop-runs-{uid}-{os.getpid()}"


def _lock(fd: int) -> bool:
    """Take ``fd``'s exclusive lock if nobody holds it; True when taken."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class Slot:
    """One of the K slots, held until :meth:`release` (or until this process ends)."""

    def __init__(self, fd: int | None, index: int):
        self._fd, self.index = fd, index

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)      # closing the only descriptor of the file releases its lock
            self._fd = None


class Ticket:
    """A place in the queue for a slot, held until :meth:`take` succeeds or :meth:`leave`."""

    def __init__(self, slots: "RunSlots", number: int, fd: int):
        self.slots, self.number, self._fd = slots, number, fd

    def position(self) -> int:
        """1 when this ticket is next in line."""
        return 1 + sum(1 for n in self.slots._live_tickets() if n < self.number)

    def take(self) -> Slot | None:
        """A slot, when this ticket is next in line and one is free; the ticket is then used up."""
        if self._fd is None or self.position() > 1:
            return None
        slot = self.slots._free_slot()
        if slot is not None:
            self.leave()
        return slot

    def leave(self) -> None:
        if self._fd is not None:
            try:
                os.unlink(self.slots._ticket_path(self.number))
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None


class RunSlots:
    """The K slots of one server (see the module's docstring). Holds only its folder
    and K: every session may make its own; they agree through the files."""

    def __init__(self, limit: int | None = None, folder: Path | str | None = None):
        self.limit = default_limit() if limit is None else max(1, int(limit))
        self.folder = Path(folder) if folder is not None else default_folder()

    def take(self) -> Slot | None:
        """A free slot, if there is one and no run is waiting for one (nobody jumps the queue)."""
        if fcntl is None:
            return Slot(None, -1)
        self.folder.mkdir(parents=True, exist_ok=True)
        if any(True for _ in self._live_tickets()):
            return None
        return self._free_slot()

    def queue(self) -> Ticket:
        """A ticket at the end of the queue."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / "ticket", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 32)
            number = int(raw or b"0") + 1
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, str(number).encode())
        finally:
            os.close(fd)
        # made under another name, locked, then renamed: nobody ever sees it unlocked and takes it for stale
        tmp = self.folder / f"new-{os.getpid()}-{number}"
        t = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(t, fcntl.LOCK_EX)
        os.rename(tmp, self._ticket_path(number))
        return Ticket(self, number, t)

    # -- the files ------------------------------------------------------------------------
    def _ticket_path(self, number: int) -> Path:
        return self.folder / f"wait-{number:012d}"

    def _live_tickets(self):
        """The numbers of the tickets whose holders are still waiting; stale ones are removed."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return
        for name in names:
            if not name.startswith("wait-"):
                continue
            path = self.folder / name
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue            # taken a slot or left meanwhile
            try:
                if _lock(fd):       # nobody holds it: its holder is gone
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
                    continue
            finally:
                os.close(fd)
            yield int(name[5:])

    def _try_slot(self, i: int) -> Slot | None:
        fd = os.open(self.folder / f"slot-{i}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        if _lock(fd):
            return Slot(fd, i)
        os.close(fd)
        return None

    def _free_slot(self) -> Slot | None:
        for i in range(self.limit):
            slot = self._try_slot(i)
            if slot is not None:
                return slot
        return None
