"""Who may send to the DICOM listener: calling AE title and network address, both required to match.

An entry is "AET@host" where host is an IP address ("10.1.2.3", "::1"), a network in CIDR form ("10.1.2.0/24", for
modalities behind DHCP or a container network) or a host name resolved when a peer connects. The AE title is
compared exactly (trailing spaces removed, as PS3.8 pads AE titles with spaces).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# PS3.5 AE: 1 to 16 characters of the default repertoire, no backslash, no control characters.
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)  # noqa: E501


class PeerConfigError(ValueError):
    """A peer entry in the configuration that cannot be used; the message names it."""


def ae_title_check(value: str, *, what: str = "AE title") -> str:
    """The AE title without padding, or PeerConfigError."""
    title = (value or "").strip()
    if not title or not _AE_TITLE.match(title):
        raise PeerConfigError(
            f"{what} {value!r} is not a valid DICOM AE title (1 to 16 characters, no backslash or control characters)"
        )
    return title


@dataclass(frozen=True)
class AllowedPeer:
    ae_title: str
    host: str  # as configured

    @classmethod
    def parse(cls, entry: str) -> AllowedPeer:
        text = (entry or "").strip()
        if text.count("@") != 1:
            raise PeerConfigError(f"DICOM peer {entry!r} must be written AET@host, for example MG01@10.1.2.3")
        title, host = text.split("@")
        title = ae_title_check(title, what=f"In DICOM peer {entry!r} the AE title")
        host = host.strip()
        if not _is_network(host) and not _HOST_NAME.match(host):
            raise PeerConfigError(f"In DICOM peer {entry!r} the host {host!r} is not an address, network or host name")
        return cls(ae_title=title, host=host)

    def matches(self, *, ae_title: str, address: str) -> bool:
        return ae_title.strip() == self.ae_title and _address_in(address, self.host)

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}"


def peers_parse(entries: Iterable[str]) -> tuple[AllowedPeer, ...]:
    return tuple(AllowedPeer.parse(entry) for entry in entries if entry and entry.strip())


def peer_allowed(peers: Iterable[AllowedPeer], *, ae_title: str, address: str) -> bool:
    return any(peer.matches(ae_title=ae_title, address=address) for peer in peers)


def peer_refusal_reason(peers: Iterable[AllowedPeer], *, ae_title: str, address: str) -> str:
    """Why a peer is not allowed, for the log (the peer itself is told only 'calling AE title not recognised')."""
    same_title = [peer for peer in peers if peer.ae_title == ae_title.strip()]
    if not same_title:
        return f"the calling AE title {ae_title.strip()!r} is not configured"
    hosts = ", ".join(peer.host for peer in same_title)
    return f"{ae_title.strip()!r} is configured for {hosts}, not for the address {address}"


def _is_network(host: str) -> bool:
    try:
        ipaddress.ip_network(host, strict=False)
    except ValueError:
        return False
    return True


def _address_in(address: str, host: str) -> bool:
    try:
        peer_address = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if peer_address.version == 6 and peer_address.ipv4_mapped:  # an IPv4 peer on a dual-stack socket
        peer_address = peer_address.ipv4_mapped
    if _is_network(host):
        return peer_address in ipaddress.ip_network(host, strict=False)
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except OSError as exc:
        logger.warning("DICOM peer host %s cannot be resolved: %s", host, exc)
        return False
    return any(ipaddress.ip_address(item.split("%", 1)[0]) == peer_address for item in resolved)
