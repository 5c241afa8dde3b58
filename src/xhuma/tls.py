"""TLS on the switch's listener: the server context, mutual TLS, certificate rotation, and the
peer certificate's subject as the API layer sees it.

The context: TLS 1.2 at least (1.3 is negotiated whenever the client has it), TLS 1.2 ciphers
limited to ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 (no RC4, 3DES, CBC or SHA-1
MACs), no compression, no renegotiation, the server's cipher order. With a client CA, every
handshake must present a certificate issued by that CA (mutual TLS), or it fails.

Rotation: the listening context never changes (asyncio holds on to it), but each handshake is
moved, as soon as its ClientHello arrives, onto the context built from the files most recently
read (`ServerTls.reload`, run on SIGHUP). So a new certificate, key *and* client CA apply to
new connections at once, including a CA taken out of the file; connections already open keep
theirs. A reload that fails (a missing file, a key that does not match) changes nothing.

Subjects are written as in RFC 4514, most specific attribute first, the way OpenSSL's
`-nameopt RFC2253` and `cryptography`'s `Name.rfc4514_string()` write them: a certificate
issued for O=Shop, CN=till-1 has the subject "CN=till-1,O=Shop". A credential's
`--cert-subject` is compared with it after normalising both (attribute names in capitals,
spaces around `=` and `,` dropped); values compare exactly."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!SHA1:!SHA"
"""TLS 1.2 suites: ECDHE only, AEAD only (TLS 1.3 suites are all AEAD and not configured here)."""

SHORT_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
"""RFC 4514's attribute type names; others keep OpenSSL's long name (emailAddress, serialNumber)."""

TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class TlsError(ValueError):
    """One line naming the file and what is wrong with it; `which` is the setting at fault
    ("cert", "key" or "client_ca")."""

    def __init__(self, which: str, message: str) -> None:
        super().__init__(message)
        self.which = which


@dataclass(frozen=True)
class TlsFiles:
    """The listener's certificate chain and key (PEM), and the CA its clients' certificates must
    come from (None: no client certificates asked for)."""

    cert: Path
    key: Path
    client_ca: Path | None = None


def _readable(path: Path, which: str, what: str) -> None:
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as exc:
        raise TlsError(which, f"{what} {path} cannot be read: {exc.strerror or exc}") from None


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A server context from the files, or TlsError naming the file at fault."""
    _readable(files.cert, "cert", "certificate")
    _readable(files.key, "key", "key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    _load_pair(context, files.cert, files.key)
    if files.client_ca is not None:
        _load_ca(context, files.client_ca, "client_ca", "client CA")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _load_pair(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise TlsError("key", f"certificate {cert} and key {key} do not load as a pair ({exc.reason or exc})") from None
    except ValueError as exc:  # an encrypted key: no password is asked for
        raise TlsError("key", f"key {key}: {exc}") from None


def _load_ca(context: ssl.SSLContext, ca: Path, which: str, what: str) -> None:
    _readable(ca, which, what)
    try:
        context.load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise TlsError(which, f"{what} {ca} holds no PEM certificate ({exc.reason or exc})") from None


@dataclass(frozen=True)
class ClientTlsFiles:
    """How xhuma checks a provider's (or the bank's) server and proves itself to it: the CA
    bundle the server's certificate must chain to (None: the system's trusted CAs), and the
    client certificate and key it presents for mutual TLS (None: none)."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


def client_context(files: ClientTlsFiles) -> ssl.SSLContext:
    """A client context from the files (TLS 1.2 at least, the server's certificate and host name
    verified), or TlsError naming the setting at fault ("ca", "cert" or "key")."""
    if (files.cert is None) != (files.key is None):
        raise TlsError("cert" if files.cert is None else "key", "a certificate and its key go together; one is missing")
    # A CA bundle replaces the system's trusted CAs rather than adding to them.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT) if files.ca is not None else ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No renegotiation (and no TLS 1.3 post-handshake authentication, off unless asked for): a
    # server judges our certificate only in the handshake, before it has read any request.
    context.options |= ssl.OP_NO_RENEGOTIATION
    if files.ca is not None:
        _load_ca(context, files.ca, "ca", "CA bundle")
    if files.cert is not None and files.key is not None:
        _readable(files.cert, "cert", "certificate")
        _readable(files.key, "key", "key")
        _load_pair(context, files.cert, files.key)
    return context


class ServerTls:
    """The listener's TLS: `context` for the server, `reload()` to re-read the files."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._current = server_context(files)
        self.context = server_context(files)
        self.context.sni_callback = self._choose

    def _choose(self, connection: Any, _server_name: str | None, _context: ssl.SSLContext) -> None:
        """Called on every ClientHello, with or without SNI: use the newest files' context."""
        connection.context = self._current

    def reload(self) -> None:
        """Re-read certificate, key and client CA for new connections; TlsError leaves all as it was."""
        self._current = server_context(self.files)

    @property
    def mutual(self) -> bool:
        return self.files.client_ca is not None


def subject_name(subject: Any) -> str:
    """`getpeercert()["subject"]` (RDNs, least specific first) as "CN=till-1,O=Shop"."""
    rdns = []
    for rdn in reversed(subject or ()):
        rdns.append("+".join(f"{SHORT_NAMES.get(name, name)}={_escape(value)}" for name, value in rdn))
    return ",".join(rdns)


def _escape(value: str) -> str:
    escaped = "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)
    if escaped.startswith((" ", "#")):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and len(escaped) > 1:
        escaped = escaped[:-1] + "\\ "
    return escaped


def normal_subject(text: str) -> str:
    """A subject as typed ("cn = till-1, O=Shop") in the form `subject_name` writes."""
    parts, current, escaped = [], "", False
    for c in text:
        if escaped:
            current += c
            escaped = False
        elif c == "\\":
            current += c
            escaped = True
        elif c in ",+":
            parts.append((current, c))
            current = ""
        else:
            current += c
    parts.append((current, ""))
    out = []
    for part, separator in parts:
        name, _, value = part.partition("=")
        name = name.strip()
        if name.upper() in SHORT_NAMES.values():
            name = name.upper()
        out.append(f"{name}={value.strip()}{separator}")
    return "".join(out)


def same_subject(bound: str, presented: str | None) -> bool:
    """Whether a credential's `cert_subject` names the presented certificate's subject."""
    return presented is not None and normal_subject(bound) == normal_subject(presented)


def tls_extension(ssl_object: Any) -> dict[str, Any]:
    """The ASGI TLS extension (`scope["extensions"]["tls"]`) of a connection's SSL object."""
    der = ssl_object.getpeercert(binary_form=True)
    peer = ssl_object.getpeercert() if der else None
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": subject_name(peer["subject"]) if peer else None,
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def peer_subject(scope: Any) -> str | None:
    """The verified client certificate's subject of a request, None without one."""
    tls = scope.get("extensions", {}).get("tls") or {}
    name = tls.get("client_cert_name")
    return name if isinstance(name, str) else None
