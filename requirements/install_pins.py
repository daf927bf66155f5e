"""The pins one `make install` uses, printed as a constraints file: a profile's lock, without the packages
named in --drop files (NEURON_AWS=0 leaves AWS's out), and with --prefer-installed the versions that the
system Python under this venv already has in place of the lock's (SYSTEM_PACKAGES=1 in AWS's Neuron image:
its torch, torch-neuronx, numpy and protobuf are used, not installed a second time beside them).

Runs before mlcompile is installed, on the standard library only."""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(path: Path) -> dict[str, str]:
    """The package each pin line of a constraints file names, by canonical name."""
    return {canonical(found.group(1)): line for line in path.read_text().splitlines() if (found := PIN.match(line))}


def system_packages() -> dict[str, str]:
    """Packages the Python under this venv has (its system site-packages), not the venv's own."""
    if sys.prefix == sys.base_prefix:
        return {}
    found = {}
    for dist in metadata.distributions():
        where = Path(str(dist.locate_file(""))).resolve()
        if not where.is_relative_to(Path(sys.prefix).resolve()):
            found.setdefault(canonical(dist.metadata["Name"]), dist.version)
    return found


def install_pins(lock: Path, drop: list[Path], installed: dict[str, str]) -> str:
    dropped = {name for path in drop for name in pinned(path)}
    lines = []
    for line in lock.read_text().splitlines():
        found = PIN.match(line)
        name = canonical(found.group(1)) if found else None
        if name in dropped:
            continue
        if name in installed:
            line = f"{found.group(1)}=={installed[name]}  # installed on the system Python (lock: {found.group(2)})"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lock", type=Path, help="the profile's constraints file")
    parser.add_argument("--drop", type=Path, action="append", default=[],
                        help="leave out every package this constraints file pins")
    parser.add_argument("--prefer-installed", action="store_true",
                        help="pin packages the system Python has to the versions it has")
    args = parser.parse_args(argv)
    sys.stdout.write(install_pins(args.lock, args.drop, system_packages() if args.prefer_installed else {}))


if __name__ == "__main__":
    main()
