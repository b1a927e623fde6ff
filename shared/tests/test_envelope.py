"""The CloudEvents Kafka binding and the event catalogue."""

from __future__ import annotations

import pytest

from tongban_kit.events import CloudEvent, InvalidEvent, InvalidEventData, load_catalogue, topic_for
from tongban_kit.observability.context import TraceContext, parse_traceparent, trace_var
from tongban_kit.testing import assert_valid_event

BUSINESS = "gov.tongban.registration.business.registered.v1"


def _business(**data: object) -> CloudEvent:
    payload = {
        "business_id": "6f1c1e57-5f6b-4a43-9b11-111111111111",
        "uscc": "91440305000000019K",
        "name": "深圳市腾飞科技有限公司",
        "division_code": "440305",
        "registered_at": "2026-11-26T10:00:00+00:00",
        "legal_representative": {"name": "张三", "resident_id": "11010519491231002X"},
    }
    payload.update(data)
    return CloudEvent.new(
        BUSINESS, source="/nodes/440300/registration", subject="91440305000000019K", data=payload
    )


def test_an_event_survives_the_kafka_binding_unchanged() -> None:
    event = _business()
    record = event.to_kafka()

    parsed = CloudEvent.from_kafka(record.key, record.value, record.headers)

    assert parsed == event
    assert record.key == b"91440305000000019K"
    assert record.topic == "registration.events"
    headers = dict(record.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"


def test_new_events_carry_the_current_trace() -> None:
    trace = TraceContext.start()
    token = trace_var.set(trace)
    try:
        event = _business()
    finally:
        trace_var.reset(token)

    headers = dict(event.to_kafka().headers)
    assert headers["traceparent"] == trace.traceparent.encode()
    assert headers["ce_traceparent"] == trace.traceparent.encode()


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"{}", [("ce_type", b"x")], "missing CloudEvents headers"),
        (b"not json", None, "not JSON"),
        (b"[1]", None, "not a JSON object"),
        (b"{}", [("ce_specversion", b"0.3")], "unsupported specversion"),
        (b"{}", [("content-type", b"application/xml")], "unsupported content-type"),
        (b"{}", [("ce_time", b"yesterday")], "RFC 3339"),
    ],
)
def test_malformed_records_are_refused_with_a_reason(
    value: bytes, headers: list[tuple[str, bytes]] | None, reason: str
) -> None:
    base = dict(_business().to_kafka().headers)
    if headers and headers[0][0] == "ce_type":
        merged = headers
    else:
        merged = list({**base, **dict(headers or [])}.items())

    with pytest.raises(InvalidEvent, match=reason):
        CloudEvent.from_kafka(b"k", value, merged)


def test_event_types_name_their_topic() -> None:
    assert topic_for("gov.tongban.identity.person.registered.v1") == "identity.events"
    with pytest.raises(InvalidEvent):
        topic_for("com.example.thing")


def test_every_catalogued_schema_is_valid_and_names_its_type() -> None:
    catalogue = load_catalogue()

    assert BUSINESS in catalogue
    assert {
        "gov.tongban.identity.person.registered.v1",
        "gov.tongban.exchange.acknowledgement.recorded.v1",
    } <= set(catalogue.types)
    for info in catalogue.types.values():
        assert info.schema["$id"].endswith(f"{info.type}.json")


def test_the_catalogue_accepts_a_valid_event_and_lists_every_fault_of_a_bad_one() -> None:
    assert_valid_event(_business())

    with pytest.raises(InvalidEventData) as caught:
        assert_valid_event(_business(uscc="lower-case", division_code="44", extra=1))

    message = str(caught.value)
    assert "/uscc" in message
    assert "/division_code" in message
    assert "extra" in message


def test_traceparent_parsing_rejects_malformed_and_all_zero_ids() -> None:
    good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert parse_traceparent(good) == TraceContext(
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01"
    )
    assert parse_traceparent("00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None
    assert parse_traceparent("garbage") is None
    assert parse_traceparent(None) is None


def _variants(schema: dict[str, object]) -> list[object]:
    """Instances around a schema: empty, its required fields filled crudely, and each property
    set to a value of every JSON type."""
    samples: list[object] = [None, 1, 1.5, "x", "", [], {}, True, "91440305000000019K"]
    properties = schema.get("properties", {})
    assert isinstance(properties, dict)
    filler = {
        "string": "x",
        "integer": 1,
        "number": 1.5,
        "boolean": True,
        "array": [],
        "object": {},
    }
    base = {
        name: filler.get(str(spec.get("type")), "x")
        for name, spec in properties.items()
        if isinstance(spec, dict)
    }
    out: list[object] = [{}, base, [], "x", None]
    for name in properties:
        out += [{**base, name: value} for value in samples]
        out.append({key: value for key, value in base.items() if key != name})
    return out


def test_the_fast_validator_never_accepts_what_the_reference_refuses() -> None:
    checked = refused = 0
    for info in load_catalogue().types.values():
        for instance in _variants(info.schema):
            reference_ok = not list(info.validator.iter_errors(instance))
            if info.fast.is_valid(instance):
                assert reference_ok, (info.type, instance)
            refused += not reference_ok
            checked += 1
    assert refused > checked // 2  # the variants do exercise refusals
