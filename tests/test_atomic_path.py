"""AtomicWritePath: the trainer's checkpoint paths write whole files or leave the old one (see also
tests/test_train.py::test_a_failed_checkpoint_save_keeps_the_previous_last_pt, a failing save in a real training)."""

from __future__ import annotations

import os

import pytest

from yolo_gfl.atomic import AtomicWritePath


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
