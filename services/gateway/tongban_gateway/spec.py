"""How the node launcher finds the gateway (entry point ``tongban.services``)."""

from tongban_kit.service import ServiceSpec

SPEC = ServiceSpec(
    name="gateway",
    app="tongban_gateway.main:create_app",
    settings="tongban_gateway.settings:GatewaySettings",
    env_prefix="TONGBAN_GATEWAY_",
    default_port=8000,
    migrations=None,
    database=None,
    start_order=9,
)
