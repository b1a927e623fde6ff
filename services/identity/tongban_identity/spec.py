"""How the node launcher finds this service (entry point ``tongban.services``)."""

from tongban_kit.service import ServiceSpec

SPEC = ServiceSpec(
    name="identity",
    app="tongban_identity.main:create_app",
    settings="tongban_identity.settings:IdentitySettings",
    env_prefix="TONGBAN_IDENTITY_",
    default_port=8001,
    migrations="tongban_identity:migrations",
    database="tongban_identity",
    start_order=1,
    commands={
        "keys": "tongban_identity.keys.__main__:main",
        "signatures": "tongban_identity.signatures.__main__:main",
        "departments": "tongban_identity.departments.__main__:main",
        "persons": "tongban_identity.persons.__main__:main",
        "directory": "tongban_identity.nodes.__main__:main",
    },
)
