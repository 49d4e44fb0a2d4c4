"""A job's peak memory, the same whether it ran as its own process or forked from the job server.

On CUDA the job is the only allocator: ``torch.cuda.max_memory_allocated`` after a reset. On the
CPU, ``ru_maxrss`` counts everything the process ever held: a direct job's imports (~230 MB of
mini-scale ``ru_maxrss``), or in a job forked by :mod:`harness.jobserver` the server's pages. So the
meter resets the resident set's high-water mark (``VmHWM``, through ``/proc/self/clear_refs``,
Linux >= 4.0) when the job starts, after its imports, and reports the peak minus the resident set
then: what the model, the data and training added (issue 19 §6).

One difference is left by ``fork()``: the kernel does not copy the page-table entries of file
mappings (shared libraries), so a forked child starts without the code pages its server had
touched (RssFile 149 MB in the server, 7 MB in the child, measured) and counts each again as it
faults it in. :func:`resident_file_pages` (the server, once) and :func:`fault_in` (the child, before
the job) put back exactly those pages, so both kinds of job start from the same resident set.
Measured with and without the server: benchmarks/README.md ("Peak memory with and without the job
server").
"""
from __future__ import annotations

import ctypes
import re
import resource
from pathlib import Path

import numpy as np
import torch

PAGE = resource.getpagesize()
_MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s+(\S.*)?$")


class PeakMemory:
    """Start it when the job starts (after its imports); :meth:`peak_mb` at the end."""

    def __init__(self, device: torch.device):
        self.device = device
        self.start_mb = 0.0
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            self.kind = "cuda_max_memory_allocated"
            return
        if reset_peak_rss():
            self.start_mb = proc_status_mb("VmRSS")
            self.kind = "cpu_peak_rss_over_start"
        else:  # not Linux, or a kernel/container that refuses the reset: the absolute peak
            self.kind = "cpu_peak_rss"

    def peak_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.kind == "cpu_peak_rss_over_start":
            return proc_status_mb("VmHWM") - self.start_mb
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def reset_peak_rss() -> bool:
    """Set this process's ``VmHWM`` back to its current resident set (``/proc/self/clear_refs``, 5);
    False where that is refused (not Linux, a kernel before 4.0, a container)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def proc_status_mb(field: str) -> float:
    """A ``kB`` line of /proc/self/status (``VmRSS``, ``VmHWM``, ``RssFile``) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise OSError(f"/proc/self/status has no {field}")


def resident_file_pages() -> list[tuple[int, int]]:
    """(address, pages) runs of this process's readable file-mapped pages that are resident
    (``/proc/self/pagemap`` bit 63); [] where pagemap cannot be read."""
    runs: list[tuple[int, int]] = []
    try:
        with open("/proc/self/maps") as maps, open("/proc/self/pagemap", "rb") as pagemap:
            for line in maps:
                m = _MAPPING.match(line.rstrip("\n"))
                if not m or m[3][0] != "r" or int(m[4]) == 0 or not (m[5] or "").startswith("/"):
                    continue  # anonymous, unreadable, or a pseudo-file ([vdso], [stack])
                start, end = int(m[1], 16), int(m[2], 16)
                pagemap.seek(start // PAGE * 8)
                present = np.frombuffer(pagemap.read((end - start) // PAGE * 8), dtype="<u8") >> 63
                edges = np.flatnonzero(np.diff(np.concatenate([[0], present, [0]]).astype(np.int8)))
                runs += [(start + int(a) * PAGE, int(b - a)) for a, b in zip(edges[::2], edges[1::2])]
    except OSError:
        return []
    return runs


def fault_in(runs: list[tuple[int, int]]) -> None:
    """Read one byte of each page of ``runs`` (from :func:`resident_file_pages` in the process this
    one was forked from): the pages become resident here too, as they were there."""
    for address, pages in runs:
        for k in range(pages):
            ctypes.string_at(address + k * PAGE, 1)
