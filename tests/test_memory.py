"""harness.core.memory: the peak a job adds, and a forked child's resident code pages put back."""
from __future__ import annotations

import os

import pytest
import torch

from harness.core.memory import PeakMemory, fault_in, proc_status_mb, resident_file_pages

linux = pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux /proc only")


@linux
def test_the_cpu_peak_counts_what_the_job_allocated_not_what_the_process_held_before():
    held = torch.ones(64 * 2**20 // 4)  # 64 MiB resident before the meter starts: not the job's
    meter = PeakMemory(torch.device("cpu"))
    assert meter.kind == "cpu_peak_rss_over_start"
    assert meter.peak_mb() < 32
    job = torch.ones(96 * 2**20 // 4)  # 96 MiB the job allocates
    del job
    assert 90 <= meter.peak_mb() < 140  # the peak survives the free
    assert held.sum() > 0


@linux
def test_a_forked_child_gets_back_the_code_pages_its_parent_had_resident():
    before = proc_status_mb("RssFile")
    runs = resident_file_pages()
    assert runs and sum(n for _, n in runs) * os.sysconf("SC_PAGE_SIZE") / 2**20 >= 0.8 * before
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: fork() left the file-mapped pages out of its resident set
        at_fork = proc_status_mb("RssFile")
        fault_in(runs)
        os.write(write, f"{at_fork} {proc_status_mb('RssFile')}".encode())
        os._exit(0)
    os.close(write)
    at_fork, after = map(float, os.read(read, 100).split())
    os.waitpid(pid, 0)
    assert at_fork < 0.5 * before  # what the meter would otherwise count again in the job
    assert after >= 0.95 * before
