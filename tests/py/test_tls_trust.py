"""HTTPS to a server whose certificate a private CA signed (a corporate proxy's, a self-hosted
OpenAI-compatible server's): trusted through SSL_CERT_FILE / SSL_CERT_DIR, as the openai SDK
(httpx) and OpenSSL read them; refused, with nothing answered, without them.

The server is FakeOpenRouter behind a TLS front (this module's asyncio forwarder, certificates
from ``trustme``). Each case runs in a child process: a transport reads the environment when it
is made."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import orroute

trustme = pytest.importorskip("trustme")

CHILD_PATH = os.pathsep.join([str(Path(orroute.__file__).resolve().parents[1]), *sys.path])
CHILD = """
import sys, orroute
url = sys.argv[1]
key = "sk-or-v1-" + "e" * 64
try:
    if sys.argv[2] == "client":
        c = orroute.OpenRouter(api_key=key, base_url=url, max_retries=0)
        r = c.chat.completions.create(model="m/a", messages=[{"role": "user", "content": "hi"}])
        print("ok", r.choices[0].message.content)
    else:
        m = orroute.AIModelManager(api_key=key, base_url=url, fallbacks=["m/a"], max_retries=0)
        print("ok", m.execute_task_sync(orroute.Task(messages="hi")).content)
except orroute.APIConnectionError as e:
    print("refused", e)
"""


class TlsFront:
    """Accepts TLS on a loopback port and forwards the plain bytes to ``target_port``."""

    def __init__(self, context: ssl.SSLContext, target_port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.target_port = target_port
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=context), self.loop
        ).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_url(ca: trustme.CA) -> Iterator[str]:
    from orroute.testing import FakeOpenRouter

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with FakeOpenRouter(models=["m/a"]) as fake:
        port = int(fake.base_url.split(":")[2].split("/")[0])
        front = TlsFront(context, port)
        try:
            yield f"https://127.0.0.1:{front.port}/api/v1"
        finally:
            front.close()


def run_child(url: str, mode: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, mode],
        capture_output=True, text=True, timeout=120, check=False,
        env={**clean, "PYTHONPATH": CHILD_PATH, **env},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


@pytest.mark.parametrize("mode", ["client", "manager"])
def test_a_private_ca_is_refused_unless_the_environment_trusts_it(https_url, ca, tmp_path, mode):
    refused = run_child(https_url, mode)
    assert refused.startswith("refused") and "certificate" in refused.lower()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    assert run_child(https_url, mode, SSL_CERT_FILE=str(bundle)).startswith("ok ")
    # an empty variable is no setting: libcurl's own bundle, which does not hold this CA
    assert run_child(https_url, mode, SSL_CERT_FILE="").startswith("refused")


def test_a_directory_of_hashed_certificates_is_trusted_through_ssl_cert_dir(https_url, ca, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command names the certificate by its subject hash")
    ca.cert_pem.write_to_path(str(tmp_path / "private-ca.pem"))
    subprocess.run(["openssl", "rehash", str(tmp_path)], check=True, capture_output=True)
    assert run_child(https_url, "client", SSL_CERT_DIR=str(tmp_path)).startswith("ok ")
