"""POST to a webhook URL without letting it reach the server's own network (SSRF).

The host is resolved at connect time, every address it resolves to is checked, and the socket
is opened to the checked address, so a DNS answer cannot change between check and connect
(DNS rebinding). The Host header and TLS server name stay the original host. Redirects are
never followed (http.client does not follow them), so a 3xx is a failure like any non-2xx.
"""

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

# Not covered by the ipaddress flags: carrier-grade NAT space (RFC 6598).
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
# IPv6 prefixes that carry an IPv4 address in their bits: a relay or a translator on the path
# delivers the packet to that IPv4 address, so 2002:7f00:1:: is 127.0.0.1 as much as
# ::ffff:127.0.0.1 is. The NAT64 well-known prefix (RFC 6052) keeps it in the last 32 bits, as
# does the deprecated IPv4-compatible form (::a.b.c.d); 6to4 (RFC 3056) in bits 16-48.
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Refused whatever they carry: the NAT64 local-use prefix (RFC 8215) is translated however the
# local network decides, and a Teredo address (RFC 4380) names a relay plus a client address
# hidden by XOR and a NAT mapping, neither of which says where the packet finally goes.
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
TEREDO = ipaddress.ip_network("2001::/32")
MAX_BODY_READ = 64 * 1024


class UnsafeDestination(Exception):
    """The URL resolves to an address webhooks must never reach; retrying will not help."""


@dataclass(frozen=True)
class Response:
    status: int
    body_excerpt: str


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64, IPv4-compatible), if any."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip in NAT64_WELL_KNOWN or ip in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _range_refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
        or ip.is_unspecified or ip in SHARED_ADDRESS_SPACE or getattr(ip, "is_site_local", False)
        or not ip.is_global
    )


def address_refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv4Address):
        return _range_refused(ip)
    if ip in TEREDO or ip in NAT64_LOCAL_USE:
        return True
    embedded = embedded_ipv4(ip)
    if embedded is not None and _range_refused(embedded):
        return True
    if ip.ipv4_mapped or ip in NAT64_WELL_KNOWN:
        # Only the IPv4 address is ever reached (these prefixes are reserved space as IPv6,
        # which is why the IPv6 check below would refuse a DNS64 answer for a public host).
        return False
    return _range_refused(ip)  # 6to4 and ::a.b.c.d must also pass as IPv6 (::/96 never does)


def resolve_checked(host: str, port: int) -> list[tuple]:
    """getaddrinfo results for host, refusing the whole host if any address is unsafe."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"Cannot resolve {host}: {exc}") from exc
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        for info in infos:
            if address_refused(info[4][0]):
                raise UnsafeDestination(f"Refused: {host} resolves to a non-public address ({info[4][0]})")
    return infos


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    last_error: OSError | None = None
    for family, socktype, proto, _, sockaddr in resolve_checked(host, port):
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    raise last_error or OSError(f"Cannot connect to {host}")


class CheckedHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = _connect(self.host, self.port, self.timeout)


class CheckedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        sock = _connect(self.host, self.port, self.timeout)
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(sock, server_hostname=self.host)


def post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """POST body to url; raises UnsafeDestination, or OSError/HTTPException on network errors."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestination(f"Refused: {url!r} is not an http(s) URL")
    connection_class = CheckedHTTPSConnection if parts.scheme == "https" else CheckedHTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read(MAX_BODY_READ)
        return Response(status=response.status, body_excerpt=raw.decode("utf-8", "replace")[:500])
    finally:
        connection.close()
