"""Files link steps as variables do: the reads, writes, folders and ``inputs:`` of a step.

Called by the step analyzer (:mod:`cellpipe.core.resolve`) for each file event: a read
links to the last earlier step that wrote the path (and those appending to it since); a
write orders the step after the earlier writers and readers of the same path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cellpipe.core.analysis import CellCode, Event
from cellpipe.core.diagnostics import Diagnostic

if TYPE_CHECKING:
    from cellpipe.core.resolve import StepAnalyzer

__all__ = ["link_declared_input", "link_file"]


def link_file(self: StepAnalyzer, event: Event, code: CellCode) -> None:
    """A read, write, mkdir or chdir of a file: files link steps as variables do."""
    from cellpipe.core.files import inside, matches, normalize, resolve

    template = event.binding if isinstance(event.binding, tuple) else None
    pattern = resolve(template, self.path_of) if template is not None else None  # type: ignore[arg-type]
    if pattern is None:
        if event.name != "chdir":
            self.linker.diagnostics.append(Diagnostic(
                "info", "CP310",
                f"cellpipe cannot see which file this line {event.name}s",
                cell=code.index, line=event.line, step=self.name,
                hint="if it is another step's file, tag this step after:STEP (or "
                "cache:off); build the path from literals and parameters to let cellpipe "
                "follow it",
            ))
        return
    if not pattern.startswith(("/", "~")) and "://" not in pattern and self.linker.cwd:
        pattern = normalize(f"{self.linker.cwd}/{pattern}")
    if event.name == "chdir":
        self.linker.cwd = "" if pattern == "." else pattern
        return
    self.file_lines.setdefault(pattern, (code.index, event.line))
    linker = self.linker
    for directory, maker in reversed(linker.file_writers):  # written into a made directory
        if maker != self.name and directory != pattern and inside(pattern, directory):
            self.file_order.setdefault(maker, set()).add(directory)
            break
    if event.name == "read":
        if any(matches(pattern, w) for w in self.file_writes):
            return  # this step wrote it before reading it
        # the last step that wrote it, and those that appended to it since
        writers = []
        for written, writer in reversed(linker.file_writers):
            if writer != self.name and matches(pattern, written):
                writers.append(writer)
                if linker.file_kinds.get((written, writer)) != "append":
                    break
        self.file_reads.setdefault(pattern, writers[0] if writers else None)
        for writer in writers[1:]:
            self.file_order.setdefault(writer, set()).add(pattern)
        return
    if event.name != "append":
        # a write (or a directory made): after the step that wrote it last, and after
        # every step that read it before this one overwrites it
        for written, writer in reversed(linker.file_writers):
            if writer != self.name and matches(pattern, written):
                self.file_order.setdefault(writer, set()).add(pattern)
                if linker.file_kinds.get((written, writer)) != "append":
                    break
    for read, reader in linker.file_readers:
        if reader != self.name and matches(pattern, read):
            self.file_order.setdefault(reader, set()).add(pattern)
    if self.file_writes.get(pattern) != "write":
        self.file_writes[pattern] = "append" if event.name == "append" else "write"


def link_declared_input(self: StepAnalyzer, declared: str) -> None:
    """An ``inputs:`` path links to the earlier steps that write into it.

    Each earlier written path inside a declared file, folder or pattern is read as a
    seen read would be (from its last writer, after those appending to it), so it
    travels on clusters; a declared path no step writes is an external input.
    """
    from cellpipe.core.files import inside, matches, normalize

    pattern = normalize(declared)
    linked = False
    for written in dict.fromkeys(w for w, _ in reversed(self.linker.file_writers)):
        if not inside(written, pattern) or written in self.file_reads \
                or any(matches(written, own) for own in self.file_writes):
            continue
        writers: list[str] = []
        for path, writer in reversed(self.linker.file_writers):
            if writer != self.name and path == written:
                writers.append(writer)
                if self.linker.file_kinds.get((path, writer)) != "append":
                    break
        if writers:
            linked = True
            self.file_reads[written] = writers[0]
            for writer in writers[1:]:
                self.file_order.setdefault(writer, set()).add(written)
    if not linked:
        self.file_reads.setdefault(pattern, None)
