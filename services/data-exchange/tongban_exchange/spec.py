"""How the node launcher finds this service (entry point ``tongban.services``)."""

from tongban_kit.service import ServiceSpec

SPEC = ServiceSpec(
    name="exchange",
    app="tongban_exchange.main:create_app",
    settings="tongban_exchange.settings:ExchangeSettings",
    env_prefix="TONGBAN_EXCHANGE_",
    default_port=8003,
    migrations="tongban_exchange:migrations",
    database="tongban_exchange",
    start_order=3,
    commands={"audit": "tongban_exchange.log.command:main"},
    # Pairwise pseudonyms for departments; the message log's checkpoints signed.
    client_scopes=("identity:pairwise:derive", "identity:sign"),
)
