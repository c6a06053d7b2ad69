"""Hermetic by default: no network, no real chat model, a private cache, no leaked CLUSTERAGENT_* settings.

A test that starts the real embedded model carries `@pytest.mark.real_model`; one that talks to a
server of its own on this machine carries `@pytest.mark.local_server`. Even then only loopback
addresses are reachable.
"""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths are local by construction
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _guard_network(request, monkeypatch):
    allow_loopback = any(request.node.get_closest_marker(m) is not None for m in ("real_model", "local_server"))

    def check(address):
        if _is_loopback(address) and allow_loopback:
            return
        raise RuntimeError(
            f"test {request.node.nodeid} tried to connect to {address!r}; tests are hermetic "
            "(mark it @pytest.mark.real_model to reach a local server)"
        )

    def connect(self, address):
        check(address)
        return _real_connect(self, address)

    def connect_ex(self, address):
        check(address)
        return _real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture(autouse=True)
def _guard_real_models(request, monkeypatch):
    """Starting the embedded llama.cpp model is a real model call: only tests marked real_model may."""
    if request.node.get_closest_marker("real_model") is not None:
        return
    from clusteragent.models import EmbeddedServer

    def refuse(*args, **kwargs):
        raise RuntimeError(f"test {request.node.nodeid} tried to start a real chat model; "
                           "use tests/fakes.ScriptedChatModel or mark it @pytest.mark.real_model")

    monkeypatch.setattr(EmbeddedServer, "get", classmethod(refuse))


@pytest.fixture(scope="session")
def shared_model_cache(tmp_path_factory):
    """One cache folder for the session's real-model tests, so the 491 MB model file is joined once."""
    return tmp_path_factory.mktemp("model-cache")


def _isolate(monkeypatch: pytest.MonkeyPatch, cache_dir) -> None:
    for name in list(os.environ):
        if name.startswith("CLUSTERAGENT_") or name.startswith("OPENAI_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLUSTERAGENT_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("CLUSTERAGENT_PROGRESS", "false")


@pytest.fixture(scope="session", autouse=True)
def _isolated_session(tmp_path_factory):
    """The same isolation for fixtures shared by a module or the session, which are set up before a test's
    own: without it they read and wrote the user's embedding cache, whose vectors (computed in other
    batches) differ from fresh ones in the last digits."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(monkeypatch, tmp_path_factory.mktemp("session-cache"))
        yield


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory, monkeypatch):
    _isolate(monkeypatch, tmp_path_factory.mktemp("cache"))
