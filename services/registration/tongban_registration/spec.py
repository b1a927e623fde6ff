"""How the node launcher finds this service (entry point ``tongban.services``)."""

from tongban_kit.service import ServiceSpec

SPEC = ServiceSpec(
    name="registration",
    app="tongban_registration.main:create_app",
    settings="tongban_registration.settings:RegistrationSettings",
    env_prefix="TONGBAN_REGISTRATION_",
    default_port=8002,
    migrations="tongban_registration:migrations",
    database="tongban_registration",
    start_order=2,
    # E-licences are signed by the node's document key, held by identity; applicants'
    # signatures of their submissions are checked against their keys, also held by identity.
    # Licence prerequisites read other departments' records through data-exchange.
    client_scopes=("identity:sign", "identity:verify", "exchange:query"),
)
