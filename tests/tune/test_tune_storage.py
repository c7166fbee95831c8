"""The studies' SQLite file opened by several processes at once (a tuning session starting
while `cellpipe tune --list` or `--show` looks): each opens it, none fails."""

from __future__ import annotations

import multiprocessing

from cellpipe.tune_study import import_optuna, open_storage


def _open(root: str, barrier) -> None:
    import_optuna()
    barrier.wait()  # all at once: each finds no tables and makes them
    open_storage(root)


def test_processes_opening_a_new_study_file_at_once_all_succeed(tmp_path):
    context = multiprocessing.get_context("spawn")
    for round_ in range(3):
        root = tmp_path / f"root{round_}"
        barrier = context.Barrier(3)
        processes = [context.Process(target=_open, args=(str(root), barrier))
                     for _ in range(3)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(120)
        assert [p.exitcode for p in processes] == [0, 0, 0]
        assert (root / "tune" / "studies.db").is_file()
