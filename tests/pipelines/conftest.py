"""Fixtures for pipeline tests: tiny simulated recordings, and no network at all."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests must never download: any socket connection fails loudly."""

    def guard(*args, **kwargs):
        raise RuntimeError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket, "create_connection", guard)


@pytest.fixture(scope="session")
def sim_fmri(tmp_path_factory):
    from neuroconv.pipelines.simulate import simulate_fmri

    return simulate_fmri(tmp_path_factory.mktemp("sim_fmri"), n_subjects=3, n_times=60,
                         shape=(14, 16, 14), n_regions=10, n_active=3, seed=0)


@pytest.fixture(scope="session")
def sim_eeg(tmp_path_factory):
    from neuroconv.pipelines.simulate import simulate_eeg

    return simulate_eeg(tmp_path_factory.mktemp("sim_eeg"), n_subjects=3, duration=30.0,
                        sfreq=128.0, seed=0)
