"""Certificates for TLS on gRPC with client certificates, and TF Serving's ``--ssl_config_file``.

TF Serving's gRPC port speaks TLS when ``--ssl_config_file`` names a text ``SSLConfig``
(``tensorflow_serving/config/ssl_config.proto``): ``server_key`` and ``server_cert`` (PEM text),
``custom_ca`` (the CA whose signature a client certificate must carry) and ``client_verify``
(require one: mutual TLS). :func:`make_certificates` makes a throw-away CA, a server certificate
for 127.0.0.1/localhost and a client certificate with the ``openssl`` command line, for a demo
or a test; a real deployment gets them from its PKI. Its REST port has no TLS: terminate TLS for
REST in a proxy in front of the server.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError("The openssl command is needed to make certificates (apt-get install openssl)")
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {done.stderr.strip()[-500:]}")


def make_certificates(folder: Path, days: int = 1) -> dict[str, Path]:
    """A CA and two certificates it signs, valid ``days`` days, written to ``folder``.

    Returns the paths ``ca`` (certificate), ``server_key``, ``server_cert`` (for 127.0.0.1 and
    localhost, usable for server authentication only), ``client_key`` and ``client_cert``
    (client authentication only). Keys are ECDSA P-256, written with mode 0600.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", *_KEY, "-keyout", "ca.key", "-out", "ca.pem", "-days", str(days),
             "-subj", "/CN=course test CA", cwd=folder)
    uses = {"server": "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            "client": "extendedKeyUsage=clientAuth\n"}
    for name, extensions in uses.items():
        (folder / f"{name}.ext").write_text(extensions)
        _openssl("req", *_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                 f"/CN=course {name}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", str(days), "-extfile",
                 f"{name}.ext", cwd=folder)
    for key in folder.glob("*.key"):
        key.chmod(0o600)
    return {"ca": folder / "ca.pem", "server_key": folder / "server.key",
            "server_cert": folder / "server.pem", "client_key": folder / "client.key",
            "client_cert": folder / "client.pem"}


def ssl_config_text(server_key: Path, server_cert: Path, custom_ca: Path | None = None,
                    client_verify: bool = False) -> str:
    """The text ``SSLConfig`` for ``--ssl_config_file``, the PEM files' contents inlined."""
    def quoted(path: Path) -> str:
        text = Path(path).read_text().replace("\\", "\\\\").replace('"', '\\"')
        return '"' + text.replace("\n", "\\n") + '"'

    lines = [f"server_key: {quoted(server_key)}", f"server_cert: {quoted(server_cert)}"]
    if custom_ca:
        lines.append(f"custom_ca: {quoted(custom_ca)}")
    lines.append(f"client_verify: {'true' if client_verify else 'false'}")
    return "\n".join(lines) + "\n"


def client_credentials(paths: dict[str, Path], with_certificate: bool = True):
    """``grpc.ssl_channel_credentials`` trusting ``paths["ca"]``, presenting the client
    certificate unless ``with_certificate`` is false. Use with ``grpc.secure_channel``."""
    import grpc

    key = paths["client_key"].read_bytes() if with_certificate else None
    cert = paths["client_cert"].read_bytes() if with_certificate else None
    return grpc.ssl_channel_credentials(root_certificates=paths["ca"].read_bytes(), private_key=key,
                                        certificate_chain=cert)
