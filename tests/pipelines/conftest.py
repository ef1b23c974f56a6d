"""Fixtures for pipeline tests: tiny simulated recordings, and no network at all."""

from __future__ import annotations

import socket

import pytest


LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests must never download: any connection beyond this machine fails loudly (the
    local Dask cluster of the Dask tests talks over the loopback interface)."""
    connect, create_connection = socket.socket.connect, socket.create_connection

    def local(address) -> bool:
        return isinstance(address, (str, bytes)) or address[0] in LOOPBACK

    def guard(sock, address, *args, **kwargs):
        if not local(address):
            raise RuntimeError(f"network access attempted in a test ({address})")
        return connect(sock, address, *args, **kwargs)

    def guard_create(address, *args, **kwargs):
        if not local(address):
            raise RuntimeError(f"network access attempted in a test ({address})")
        return create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket, "create_connection", guard_create)


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
