"""The backend loader: spec parsing, options, the packaged GGUF join and checksum, and the guards."""

import hashlib

import pytest

from clusteragent.errors import ConfigError, ModelError
from clusteragent.models import EMBEDDED_MODELS, PackagedGGUF, backend_info, load_chat_model, resolve_gguf


@pytest.mark.parametrize("spec", ["llamacpp", "qwen", ":x", "llamacpp:"])
def test_spec_without_provider_is_explained(spec):
    with pytest.raises(ConfigError, match="provider:model"):
        load_chat_model(spec)


def test_unknown_provider():
    with pytest.raises(ConfigError, match="unknown provider 'ollama'"):
        load_chat_model("ollama:llama3")


def test_openai_needs_a_key_or_a_base_url():
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_chat_model("openai:gpt-4o-mini")


def test_openai_compatible_server_from_options_and_environment(monkeypatch):
    chat = load_chat_model("openai:Qwen/Qwen2.5-7B-Instruct", base_url="http://127.0.0.1:8000/v1", timeout=5)
    info = backend_info(chat)
    assert info == {"provider": "openai", "model": "Qwen/Qwen2.5-7B-Instruct",
                    "base_url": "http://127.0.0.1:8000/v1", "parallel": 8}
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    chat = load_chat_model("openai:m")
    assert backend_info(chat)["base_url"] == "http://127.0.0.1:9999/v1"
    assert "sk-secret-value" not in repr(chat) and "sk-secret-value" not in str(backend_info(chat))


def test_unknown_options_are_rejected():
    with pytest.raises(ConfigError, match="unknown option"):
        load_chat_model("openai:m", base_url="http://127.0.0.1:1/v1", n_gpu=3)


def test_unknown_embedded_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match="qwen2.5-coder-0.5b"):
        resolve_gguf("llama-70b", tmp_path)
    with pytest.raises(ModelError, match="no GGUF file"):
        resolve_gguf(str(tmp_path / "missing.gguf"), tmp_path)


def fake_parts(tmp_path, chunks):
    paths = []
    for i, data in enumerate(chunks):
        p = tmp_path / f"part{i}.bin"
        p.write_bytes(data)
        paths.append(p)
    return paths


def test_packaged_gguf_is_joined_in_order_verified_and_reused(tmp_path, monkeypatch):
    chunks = [b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3]
    whole = b"".join(chunks)
    model = PackagedGGUF("tiny", "tiny.gguf", ("p1", "p2", "p3"), hashlib.sha256(whole).hexdigest(), len(whole), "")
    paths = fake_parts(tmp_path, chunks)
    monkeypatch.setattr(PackagedGGUF, "parts", lambda self: paths)
    out = model.path(tmp_path / "cache")
    assert out.read_bytes() == whole
    monkeypatch.setattr(PackagedGGUF, "parts", lambda self: pytest.fail("joined twice"))
    assert model.path(tmp_path / "cache") == out


def test_checksum_mismatch_is_an_error_and_leaves_no_file(tmp_path, monkeypatch):
    model = PackagedGGUF("tiny", "tiny.gguf", ("p1",), "0" * 64, 5, "reinstall")
    paths = fake_parts(tmp_path, [b"GGUF!"])
    monkeypatch.setattr(PackagedGGUF, "parts", lambda self: paths)
    with pytest.raises(ModelError, match="SHA-256"):
        model.path(tmp_path / "cache")
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_missing_part_package_says_how_to_install():
    model = EMBEDDED_MODELS["qwen2.5-coder-0.5b"]
    broken = PackagedGGUF(model.name, model.file_name, ("no_such_part_module",), model.sha256, model.size,
                          model.install_hint)
    with pytest.raises(ModelError, match=r"no-such-part-module.*small-model"):
        broken.parts()


def test_unmarked_tests_cannot_start_the_embedded_model(tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(RuntimeError, match="real chat model"):
        load_chat_model(f"llamacpp:{gguf}", cache_dir=tmp_path)


def test_unmarked_tests_cannot_reach_a_server():
    import socket

    with pytest.raises(RuntimeError, match="hermetic"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_vllm_backend_loads_lazily_and_explains_a_missing_install():
    pytest.importorskip("langchain_core")
    chat = load_chat_model("vllm:Qwen/Qwen2.5-0.5B-Instruct", tensor_parallel_size=1)
    assert backend_info(chat)["provider"] == "vllm"
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ModelError, match="separate|own environment"):
            chat.invoke("hi")
    else:
        pytest.skip("vllm is installed here; the GPU path is exercised on a GPU machine")


@pytest.mark.local_server
def test_server_that_is_down_gives_a_clear_error_naming_the_url():
    import socket

    from test_structured import MESSAGES, Pick

    from clusteragent.structured import StructuredLLM

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    chat = load_chat_model("openai:m", base_url=f"http://127.0.0.1:{port}/v1", timeout=2, max_retries=1)
    with pytest.raises(ModelError, match=rf"server at http://127.0.0.1:{port}/v1 did not answer"):
        StructuredLLM(chat).decide(MESSAGES, Pick)


class _FlakyServer:
    """A loopback OpenAI-compatible endpoint that answers 429 and 500 before a valid completion."""

    def __init__(self, failures):
        import http.server
        import threading

        self.failures = list(failures)
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                import json as _json

                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests += 1
                if outer.failures:
                    code = outer.failures.pop(0)
                    body = _json.dumps({"error": {"message": f"status {code}"}}).encode()
                    self.send_response(code)
                    self.send_header("Retry-After", "0")
                else:
                    body = _json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                        "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                            "role": "assistant", "content": '{"label": "billing", "confidence": 1}'}}],
                                        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.mark.local_server
def test_429_and_500_are_retried_then_answered():
    from test_structured import MESSAGES, Pick

    from clusteragent.structured import StructuredLLM

    server = _FlakyServer([429, 500])
    try:
        chat = load_chat_model("openai:m", base_url=server.url, timeout=5, max_retries=2)
        assert StructuredLLM(chat).decide(MESSAGES, Pick).label == "billing"
        assert server.requests == 3
    finally:
        server.close()


@pytest.mark.local_server
def test_persistent_500_ends_in_a_clear_error_after_the_retries():
    from test_structured import MESSAGES, Pick

    from clusteragent.structured import StructuredLLM

    server = _FlakyServer([500] * 10)
    try:
        chat = load_chat_model("openai:m", base_url=server.url, timeout=5, max_retries=2)
        with pytest.raises(ModelError, match=rf"server at {server.url} did not answer.*500"):
            StructuredLLM(chat).decide(MESSAGES, Pick)
        assert server.requests == 3
    finally:
        server.close()


class SlotServer:
    """Stands in for the embedded server's slot endpoint: a save writes a file, a restore needs one."""

    def __init__(self, states_dir, parallel=1):
        self.states_dir, self.parallel, self.url = states_dir, parallel, "http://127.0.0.1:1/v1"
        self.model_path, self.n_ctx, self.actions = "model.gguf", 4096, []

    def slot_action(self, action, name):
        self.actions.append(action)
        if action == "save":
            (self.states_dir / name).write_bytes(b"state")
            return {"n_saved": 1}
        return {"n_restored": 1} if (self.states_dir / name).exists() else None


def test_a_chat_turn_restores_its_folders_prompt_state_and_saves_it_even_when_the_turn_fails(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from clusteragent.models import EmbeddedServer
    from clusteragent.prompt_state import kept_prompt_state, state_file_name

    server = SlotServer(tmp_path / "states")
    server.states_dir.mkdir()
    monkeypatch.setitem(EmbeddedServer._running, "slots", server)
    chat = SimpleNamespace(openai_api_base=server.url)
    with kept_prompt_state(chat, tmp_path / "run") as restored:
        assert not restored and server.actions == []  # nothing saved yet for this folder
    assert server.actions == ["save"]
    assert (server.states_dir / state_file_name(tmp_path / "run", "model.gguf", 4096)).exists()
    with pytest.raises(RuntimeError), kept_prompt_state(chat, tmp_path / "run") as restored:
        assert restored
        raise RuntimeError("the turn failed")
    assert server.actions == ["save", "restore", "save"]
    with kept_prompt_state(chat, tmp_path / "other run") as restored:
        assert not restored  # another folder's chat has its own state
    assert state_file_name(tmp_path / "run", "model.gguf", 4096) != state_file_name(tmp_path / "run", "other.gguf", 4096)
    with kept_prompt_state(SimpleNamespace(), tmp_path / "run") as restored:  # a model of no embedded server
        assert not restored
    server.parallel, server.actions = 2, []
    with kept_prompt_state(chat, tmp_path / "run") as restored:  # several slots: which one holds the turn is unknown
        assert not restored
    assert server.actions == []


def test_only_the_most_recently_written_prompt_states_are_kept(tmp_path):
    import os

    from clusteragent.prompt_state import KEPT, prune

    for age in range(KEPT + 2):
        f = tmp_path / f"chat-{age}.bin"
        f.write_bytes(b"s")
        os.utime(f, (1000 - age, 1000 - age))
    (tmp_path / "other.bin").write_bytes(b"s")
    assert sorted(p.name for p in prune(tmp_path)) == [f"chat-{age}.bin" for age in range(KEPT, KEPT + 2)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"chat-{a}.bin" for a in range(KEPT)] + ["other.bin"])


def test_the_listing_is_read_ahead_once_where_no_state_of_the_folder_is_kept(tmp_path, monkeypatch):
    """`chat` and `serve` have the embedded model read the cluster listing before the first message: the
    first call's prompt up to the message where the folder has no state, nothing more where it has one."""
    from types import SimpleNamespace

    from test_agent import TEXTS, scripted

    from clusteragent import ClusterAgent
    from clusteragent.models import EmbeddedServer
    from clusteragent.prompt_state import read_ahead

    agent = ClusterAgent(model=scripted("topic"), progress=False, max_model_calls=60).fit(
        TEXTS, instruction="Cluster by topic.", out_dir=tmp_path / "run")
    session = agent.refine_session()
    assert read_ahead(session) is None  # a model of no embedded server: nothing to read ahead
    server = SlotServer(tmp_path / "states")
    server.states_dir.mkdir()
    monkeypatch.setitem(EmbeddedServer._running, "slots", server)
    asked = []
    chat = SimpleNamespace(openai_api_base=server.url, bind=lambda **kw: SimpleNamespace(
        invoke=lambda messages: asked.append((kw, messages))))
    monkeypatch.setattr(agent, "model", "llamacpp:qwen2.5-coder-1.5b")
    monkeypatch.setattr(agent, "chat_model", lambda: chat)
    read_ahead(session).join(10)
    assert len(asked) == 1 and asked[0][0] == {"max_tokens": 1} and server.actions == ["save"]
    listing = asked[0][1][-1][1]  # (role, content)
    assert all(name in listing for name in agent.result_.names) and "<message></message>" in listing
    read_ahead(session).join(10)
    assert len(asked) == 1 and server.actions == ["save", "restore", "save"]


def test_a_chat_that_ends_while_the_listing_is_read_ahead_waits_for_the_reading(tmp_path, monkeypatch, capsys):
    import threading
    import time

    from clusteragent import prompt_state

    done = []

    def slow_reading(session):
        thread = threading.Thread(target=lambda: (time.sleep(0.5), done.append(True)))
        thread.start()
        return thread

    monkeypatch.setattr(prompt_state, "read_ahead", slow_reading)
    with prompt_state.reading_ahead(None) as thread:
        assert thread.is_alive()
    assert done and not thread.is_alive() and "waiting for the model" in capsys.readouterr().err
