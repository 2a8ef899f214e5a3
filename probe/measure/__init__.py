"""Measuring: everything that sends packets and records what happened.

The engine (:mod:`.engine`: DNS, TCP, TLS and HTTP hop by hop, with :mod:`.dns`, :mod:`.tcp`,
:mod:`.tls`, :mod:`.http`, :mod:`.hop`, :mod:`.runtime`, :mod:`.capture`, :mod:`.decoding`),
the control client and the test-helper protocol (:mod:`.control`), the network identity
(:mod:`.identity`), the pre-flight reachability check (:mod:`.netcheck`), ``probe trace``
(:mod:`.trace`) and the circumvention endpoints' handshakes (:mod:`.circumvention`,
:mod:`.openvpn`). Measuring records observations with OONI failure strings and never judges or
stores them. May import :mod:`probe.core`, :mod:`probe.host` and :mod:`probe.inputs`; never
:mod:`probe.judge` or :mod:`probe.store`.
"""
