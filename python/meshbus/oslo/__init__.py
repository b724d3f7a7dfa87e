"""meshbus.oslo: an oslo.messaging transport driver over meshbus (no broker).

``oslo_messaging.get_rpc_transport(conf, url="meshbus://")`` loads
:class:`meshbus.oslo.driver.MeshbusDriver` through the entry point
``meshbus`` of group ``oslo.messaging.drivers``. docs/oslo.md is the guide.
"""
from .driver import MeshbusDriver, ServerLeft, list_opts

__all__ = ["MeshbusDriver", "ServerLeft", "list_opts"]
