"""AtomicWritePath: the trainer's checkpoint paths write whole files or leave the old one (see also
tests/test_train.py::test_a_failed_checkpoint_save_keeps_the_previous_last_pt, a failing save in a real training)."""

from __future__ import annotations

import os

import pytest

from yolo_gfl import atomic
from yolo_gfl.atomic import AtomicWritePath, remove_stale_temps, write_atomic

from .conftest import dead_pid, plant


def test_write_replaces_whole_and_joined_paths_keep_the_behaviour(tmp_path):
    wdir = AtomicWritePath(tmp_path)
    epoch = wdir / "epoch3.pt"  # Ultralytics builds save_period files this way
    assert isinstance(epoch, AtomicWritePath)
    epoch.write_bytes(b"old")
    assert epoch.write_bytes(bytearray(b"new checkpoint")) == len(b"new checkpoint")
    assert epoch.read_bytes() == b"new checkpoint"
    assert os.listdir(tmp_path) == ["epoch3.pt"]


def test_a_failed_write_leaves_the_old_file_and_no_partial_copy(tmp_path, monkeypatch):
    last = AtomicWritePath(tmp_path / "last.pt")
    last.write_bytes(b"epoch 1")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        last.write_bytes(b"epoch 2, never whole")
    assert last.read_bytes() == b"epoch 1"
    assert os.listdir(tmp_path) == ["last.pt"]


def test_stale_temps_are_those_of_a_dead_writer_untouched_for_a_while(tmp_path):
    dead, me = dead_pid(), os.getpid()
    stale = plant(tmp_path, f".last.pt.{dead}-0badcafe.tmp", age_s=3600)
    fresh = plant(tmp_path, f".best.pt.{dead}-0badcafe.tmp", age_s=5)  # maybe another machine's writer, still going
    live = plant(tmp_path, f".last.pt.{me}-12345678.tmp", age_s=3600)  # a live writer here keeps its file
    other = plant(tmp_path, f".last.pt.{dead}-notatemp.tmp", age_s=3600)  # not write_atomic's name: not ours
    user = plant(tmp_path, "notes.tmp", age_s=3600)
    write_atomic(tmp_path / "last.pt", b"whole")

    assert remove_stale_temps(tmp_path) == [stale]
    assert not stale.exists()
    assert all(p.exists() for p in (fresh, live, other, user, tmp_path / "last.pt"))
    assert remove_stale_temps(tmp_path, min_age_s=0) == [fresh]
    assert remove_stale_temps(tmp_path / "missing") == []


def test_on_windows_no_process_is_asked_after(tmp_path, monkeypatch):
    """Windows' os.kill terminates the process whatever the signal, so there a stale copy is left, never probed."""
    stale = plant(tmp_path, f".last.pt.{dead_pid()}-0badcafe.tmp", age_s=3600)

    def no_kill(pid, sig):
        raise AssertionError("os.kill called")

    monkeypatch.setattr(atomic, "_CAN_PROBE_PROCESSES", False)  # as on Windows
    monkeypatch.setattr(os, "kill", no_kill)
    assert remove_stale_temps(tmp_path) == [] and stale.exists()
