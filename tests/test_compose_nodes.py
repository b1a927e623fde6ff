"""The multi-node compose file wires its nodes together as ``tongban nodes up`` does.

``deploy/docker-compose.nodes.yml`` runs the central node 100000 and the regional nodes 440300
and 310000. tests/test_compose.py checks each node like the one-node file (settings, ports,
migrations, service accounts, a node's services using its own database and broker); these
tests check the federation: node keys, the enrolment of the regional nodes with a token central
issued, the trust anchors, and where each node reads central's directory and national data.
No Docker engine is needed: the file is read as YAML.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from deployment_checks import (
    CENTRAL,
    FEDERATION,
    GATEWAY,
    SPECS,
    ComposeNode,
    environment,
    interpolate,
    mounts,
)

from tongban_kit.node.nodes import default_plan

BY_CODE = {node.code: node for node in FEDERATION}
REGIONAL = [node for node in FEDERATION if node.code != CENTRAL]
DIRECTORY_PATH = "/.well-known/tongban-directory.jwt"
# The settings that name the node key, per service, and the directory and anchor settings.
NODE_KEY = {
    "identity": "TONGBAN_IDENTITY_NODE_KEY_FILE",
    "gateway": "TONGBAN_GATEWAY_NODE_KEY_FILE",
    "exchange": "TONGBAN_EXCHANGE_NODE_KEY_FILE",
}
DIRECTORY = {
    "gateway": ("TONGBAN_GATEWAY_DIRECTORY_URL", "TONGBAN_GATEWAY_DIRECTORY_ANCHOR_FILE"),
    "exchange": (
        "TONGBAN_EXCHANGE_NATIONAL_DIRECTORY_URL",
        "TONGBAN_EXCHANGE_NATIONAL_ANCHOR_FILE",
    ),
}

per_node = pytest.mark.parametrize("node", FEDERATION, ids=str)
per_regional = pytest.mark.parametrize("node", REGIONAL, ids=str)
per_follower = pytest.mark.parametrize("kind", sorted(DIRECTORY))


def _volume_of(node: ComposeNode, kind: str, file: str) -> str:
    """The named volume ``file`` lives in, as ``kind`` of ``node`` mounts it."""
    folder = str(Path(file).parent)
    volume = mounts(node.service(kind)).get(folder)
    assert volume, f"{node.name(kind)} mounts no volume at {folder} (for {file})"
    return volume


def _jobs(node: ComposeNode, pattern: str) -> dict[str, re.Match[str]]:
    """This node's services whose command (as the shell gets it) matches ``pattern``."""
    found = {}
    for name, service in node.services().items():
        command = service.get("command") or []
        script = interpolate(command if isinstance(command, str) else " ".join(command))
        match = re.search(pattern, script)
        if match:
            found[name] = match
    return found


def test_the_file_holds_the_three_nodes_of_tongban_nodes_up() -> None:
    assert [node.code for node in FEDERATION] == [plan.code for plan in default_plan()]
    for plan in default_plan():
        identity = environment(BY_CODE[plan.code].service("identity"))
        assert identity["TONGBAN_IDENTITY_NODE_NAME"] == plan.name


@per_node
def test_each_node_has_its_own_database_broker_and_volumes(node: ComposeNode) -> None:
    kafka = environment(node.service("kafka"))
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{node.name('kafka')}:9092"
    for kind in ("postgres", "kafka"):
        (volume,) = mounts(node.service(kind)).values()
        others = [o for o in FEDERATION if o != node]
        assert all(volume not in mounts(s).values() for o in others for s in o.services().values())


@per_node
def test_one_node_key_per_node_made_in_its_own_volume(node: ComposeNode) -> None:
    files = {kind: environment(node.service(kind)).get(var) for kind, var in NODE_KEY.items()}
    assert None not in files.values(), f"{node}: a service has no node key: {files}"
    assert len(set(files.values())) == 1, f"{node}'s services read different node keys: {files}"
    key_file = files["identity"]
    assert key_file is not None
    volumes = {_volume_of(node, kind, key_file) for kind in NODE_KEY}
    assert len(volumes) == 1, f"{node}'s services read the node key from {volumes}"
    (volume,) = volumes
    for other in FEDERATION:
        if other != node:
            assert all(volume not in mounts(s).values() for s in other.services().values())
    # A one-shot job of the node makes the key there, and identity waits for it.
    makers = _jobs(node, rf"test -s {re.escape(key_file)} \|\| python")
    assert len(makers) == 1, f"no job of {node} makes {key_file}"
    (maker,) = makers
    assert _volume_of(node, maker.removesuffix(f"-{node.code}"), key_file) == volume
    depends = node.service("identity").get("depends_on", {})
    assert depends.get(maker, {}).get("condition") == "service_completed_successfully"


@per_node
def test_identity_lists_its_own_gateway_in_the_directory(node: ComposeNode) -> None:
    url = environment(node.service("identity"))["TONGBAN_IDENTITY_GATEWAY_URL"]
    gateway = (next(s for s in SPECS if s.name == GATEWAY)).default_port
    assert (node.host(url), urlsplit(url).port) == (node.name(GATEWAY), gateway)


@per_node
@per_follower
def test_gateways_and_exchanges_follow_centrals_directory(node: ComposeNode, kind: str) -> None:
    url_setting, _ = DIRECTORY[kind]
    url = urlsplit(environment(node.service(kind))[url_setting])
    central = BY_CODE[CENTRAL]
    if node.code == CENTRAL:
        # As in `tongban nodes up`: central reads its directory from its own identity.
        assert (url.hostname, url.port, url.path) == (
            central.name("identity"),
            8001,
            DIRECTORY_PATH,
        )
    else:
        # A regional node through central's gateway, as other nodes reach it.
        wanted = (central.name(GATEWAY), 8000, "/api/identity" + DIRECTORY_PATH)
        assert (url.hostname, url.port, url.path) == wanted


@per_regional
def test_regional_nodes_enrol_with_a_token_central_issued(node: ComposeNode) -> None:
    central = BY_CODE[CENTRAL]
    enrolling = _jobs(
        node,
        r"tongban directory enrol --central (\S+) --token \"?\$\(cat (\S+)\)\"? "
        r"--anchor-file (\S+)",
    )
    assert len(enrolling) == 1, f"{node} has no job running `tongban directory enrol`"
    ((job, match),) = enrolling.items()
    central_url, token_file, anchor = match.groups()
    assert node.host(central_url) == central.name(GATEWAY)
    # The job runs with the node's identity settings (code, name, key, gateway URL).
    env = environment(node.compose["services"][job])
    identity = environment(node.service("identity"))
    for variable in ("TONGBAN_NODE_CODE", "TONGBAN_IDENTITY_NODE_NAME", NODE_KEY["identity"]):
        assert env[variable] == identity[variable], f"{job} and identity differ on {variable}"
    assert env["TONGBAN_IDENTITY_GATEWAY_URL"] == identity["TONGBAN_IDENTITY_GATEWAY_URL"]
    # Central issues the token for this code into the volume the job reads it from.
    issuing = _jobs(central, rf"tongban directory issue-token --code {node.code} > (\S+)")
    assert len(issuing) == 1, f"no job of the central node issues a token for {node.code}"
    ((issuer, issued),) = issuing.items()
    assert issued.group(1) == token_file
    services = node.compose["services"]
    folder = str(Path(token_file).parent)
    assert mounts(services[issuer])[folder] == mounts(services[job])[folder]
    central_db = "TONGBAN_IDENTITY_DATABASE_URL"
    assert (
        environment(services[issuer])[central_db]
        == environment(central.service("identity"))[central_db]
    )
    depends = services[job].get("depends_on", {})
    assert depends[issuer]["condition"] == "service_completed_successfully"
    assert depends[central.name(GATEWAY)]["condition"] == "service_healthy"
    # Its gateway and data-exchange check the directory against the anchor the job wrote.
    for kind, (_, anchor_setting) in DIRECTORY.items():
        assert environment(node.service(kind))[anchor_setting] == anchor
        assert _volume_of(node, kind, anchor) == mounts(services[job])[str(Path(anchor).parent)]
        wait = node.service(kind).get("depends_on", {}).get(job, {})
        assert wait.get("condition") == "service_completed_successfully", (
            f"{node.name(kind)} must wait for {job}, which writes its anchor"
        )


@per_follower
def test_centrals_anchor_is_its_own_node_key(kind: str) -> None:
    central = BY_CODE[CENTRAL]
    anchor = environment(central.service(kind))[DIRECTORY[kind][1]]
    key_file = environment(central.service("identity"))[NODE_KEY["identity"]]
    writers = _jobs(central, rf"load_node_key\(pathlib.Path\('{re.escape(key_file)}'\).*> {anchor}")
    assert len(writers) == 1, f"no job of the central node writes its public key to {anchor}"
    assert _volume_of(central, kind, anchor) == _volume_of(central, "identity", key_file)


def test_only_central_issues_tokens() -> None:
    for node in REGIONAL:
        assert not _jobs(node, r"tongban directory issue-token")
    assert not _jobs(BY_CODE[CENTRAL], r"tongban directory enrol")
