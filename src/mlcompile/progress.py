"""What a long step is doing, as it happens: a line when a step starts, a line every
HEARTBEAT_SECONDS while it runs, and one with its elapsed time when it ends. Lines go to `sink`
(stderr by default; the pytest plugin writes them past its output capture)."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

HEARTBEAT_SECONDS = 8.0  # below the 10 s a user waits without a word


_bar = None  # the progress bar on screen, if any: lines are written above it


def _stderr(line: str) -> None:
    if _bar is not None:
        _bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


sink: Callable[[str], None] = _stderr
_running: list[threading.Event] = []  # the steps under way, innermost last


def say(line: str) -> None:
    sink(line)


@contextmanager
def step(what: str, heartbeat: float = HEARTBEAT_SECONDS) -> Iterator[None]:
    """`what ...`, `what: still running (16 s)` every `heartbeat` seconds, then `what: 23.4 s`."""
    started = time.perf_counter()
    done = threading.Event()
    _running.append(done)

    def beat() -> None:
        while not done.wait(heartbeat):
            if _running and _running[-1] is done:  # the innermost step speaks for the steps around it
                say(f"{what}: still running ({time.perf_counter() - started:.0f} s)")

    say(f"{what} ...")
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    except BaseException:
        done.set()
        _running.remove(done)
        say(f"{what}: failed after {time.perf_counter() - started:.1f} s")
        raise
    done.set()
    _running.remove(done)
    thread.join()
    say(f"{what}: {time.perf_counter() - started:.1f} s")


@contextmanager
def bar(total: int, what: str) -> Iterator[Callable[[], None]]:
    """A progress bar of `total` steps on a terminal (none in CI logs, where the lines say it all);
    yields the function that advances it."""
    global _bar
    if not sys.stderr.isatty() or sink is not _stderr or total < 2:
        yield lambda: None
        return
    from tqdm import tqdm

    _bar = tqdm(total=total, desc=what, file=sys.stderr, leave=False)
    try:
        yield lambda: _bar.update(1)
    finally:
        _bar.close()
        _bar = None
