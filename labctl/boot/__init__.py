"""The boot service: DHCP/TFTP through dnsmasq, HTTP answers per MAC, install reports.

``assets`` keeps the verified install files, ``state`` names where a running
service keeps its files, ``http`` answers booting servers, ``service`` starts
and stops it all, ``work`` is the os layer's local work on top of them.
"""
