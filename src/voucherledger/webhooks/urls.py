"""Which webhook URLs may be called: https, no user or password, at most 2000
characters, and a host that resolves only to public addresses (the SSRF rules).

``webhook_allow_insecure_urls`` lifts the https and public-address rules, for
development and tests. The worker checks again at every attempt and connects to
the very address it checked (see ``deliver.py``), so a name that later resolves to
an internal address is refused then too.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

from voucherledger.core.errors import WebhookUrlInsecure, WebhookUrlInvalid, WebhookUrlNotPublic

MAX_URL_LENGTH = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _invalid(message: str) -> WebhookUrlInvalid:
    return WebhookUrlInvalid(
        message, [{"loc": ["body", "url"], "msg": message, "type": "webhook_url_invalid"}]
    )


def parse(url: str, *, allow_insecure: bool) -> SplitResult:
    """The URL's parts, after the rules that need no DNS."""
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(f"A webhook URL is at most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _invalid("Not a URL.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("A webhook URL is an absolute http(s) URL with a host.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _invalid("A webhook URL may not hold a user or password.")
    if port == 0:
        raise _invalid("Port 0 cannot be called.")
    if parts.scheme != "https" and not allow_insecure:
        message = "A webhook URL must be https."
        raise WebhookUrlInsecure(
            message, [{"loc": ["body", "url"], "msg": message, "type": "webhook_url_insecure"}]
        )
    return parts


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches through a translation: IPv4-mapped,
    6to4 (2002::/16), Teredo (2001::/32, its client address) or NAT64 (64:ff9b::/96)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet. An IPv6 address that carries an
    IPv4 one (mapped, 6to4, Teredo, NAT64) is judged by that IPv4 address too, so
    ``64:ff9b::7f00:1`` is loopback, not public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public(embedded):
            return False
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _not_public(message: str) -> WebhookUrlNotPublic:
    return WebhookUrlNotPublic(
        message, [{"loc": ["body", "url"], "msg": message, "type": "webhook_url_not_public"}]
    )


def resolve(parts: SplitResult, *, allow_insecure: bool) -> list[IPAddress]:
    """Every address the host resolves to, each checked; raises when there is none or
    one is not public (unless insecure URLs are allowed)."""
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _not_public(f"The host {host} does not resolve.") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise _not_public(f"The host {host} does not resolve.")
    if not allow_insecure:
        for address in addresses:
            if not is_public(address):
                # The address itself is not told: the answer would map internal names.
                raise _not_public(f"The host {host} resolves to an address that is not public.")
    return addresses


def check(url: str, *, allow_insecure: bool) -> list[IPAddress]:
    """Every rule: the URL's form, then its host's addresses."""
    return resolve(parse(url, allow_insecure=allow_insecure), allow_insecure=allow_insecure)
