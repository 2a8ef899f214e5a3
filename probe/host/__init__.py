"""The host: what probe needs from the machine it runs on.

The event loop (:mod:`.eventloop`), the heap's collector settings (:mod:`.heap`), httpx loaded
lean (:mod:`.httpstack`), bounded reads of files and downloads (:mod:`.files`), the user's
config file (:mod:`.userconfig`), the informed consent (:mod:`.consent`) and where packaged
data lives (:mod:`.data`). May import :mod:`probe.core` only.
"""
