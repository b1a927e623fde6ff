"""Registration's settings (``TONGBAN_REGISTRATION_*``)."""

from __future__ import annotations

from datetime import date

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from tongban_kit.crypto import FieldCipher, KeyringError
from tongban_kit.settings import ServiceSettings
from tongban_registration.applications.entity_types import EntityType
from tongban_registration.licensing.types import LicenceType

#: The development keyring for personal data: fixed and published here, so never for production.
DEVELOPMENT_PII_KEYS = "dev-registration:cmVnaXN0cmF0aW9uLWRldmVsb3BtZW50LWtleS0zMmI="


class RegistrationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TONGBAN_REGISTRATION_", extra="ignore")

    service_name: str = "registration"
    port: int = Field(default=8002, description="Port the service listens on.")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/tongban_registration",
        description="SQLAlchemy URL of the service's own database (asyncpg driver).",
    )
    pii_keys: SecretStr | None = Field(
        default=None,
        description="Seals legal representatives' resident ID numbers at rest (AES-256-GCM): "
        "`kid:base64key`, comma-separated, last one current; older keys keep decrypting old "
        "rows. Required in production; in development unset means a fixed, publicly known key.",
    )
    name_reservation_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="A draft reserves its proposed name for this many days; submitting renews "
        "the reservation, approval makes it permanent, rejection or withdrawal releases it.",
    )
    review_working_days: int = Field(
        default=3,
        ge=1,
        le=60,
        description="Statutory clock: working days from (re)submission to the promised "
        "decision. Weekends and `holidays` are skipped.",
    )
    holidays: list[date] = Field(
        default_factory=list,
        description="Public holidays the statutory clock skips, as a JSON list of ISO dates "
        '(`["2026-10-01","2026-10-02"]`).',
    )
    auto_approve_entity_types: list[str] = Field(
        default_factory=list,
        description="Entity types approved at submission without an officer when the "
        'application is rule-complete, as a JSON list (e.g. `["individual_business"]`, '
        "Shenzhen-style instant approval). Empty: every application goes to an officer.",
    )
    deregistration_notice_days: int = Field(
        default=20,
        ge=0,
        le=90,
        description="Simplified deregistration: days the public notice runs, during which "
        "anyone signed in may object; an officer completes it only after the notice ends "
        "without objection.",
    )
    licence_types: list[LicenceType] = Field(
        default_factory=list,
        description="Accreditation licences (证照分离) this node issues, as a JSON list of "
        '`{"code", "name", "number_prefix", "scope_covers", "requires_licences", '
        '"department_checks": [{"dataset", "field", "equals", "description"}], '
        '"validity_days", "instant_approval"}`. docs/portal-developers.md has an example.',
    )
    exchange_url: str = Field(
        default="http://127.0.0.1:8003",
        validation_alias=AliasChoices(
            "exchange_url", "TONGBAN_REGISTRATION_EXCHANGE_URL", "TONGBAN_EXCHANGE_URL"
        ),
        description="Data-exchange's internal base URL: licence prerequisites read other "
        "departments' records there with registration's service account (`exchange:query`).",
    )
    document_max_bytes: int = Field(
        default=10_485_760,
        ge=1024,
        le=104_857_600,
        description="Largest document (PDF, PNG or JPEG) an applicant may upload to an "
        "application; larger is a 413. The upload route alone accepts bodies this large (the "
        "gateway's routes.yaml raises its limit to match).",
    )
    overdue_refresh_s: float = Field(
        default=60.0,
        gt=0,
        description="How often the overdue-applications gauge is recounted.",
    )

    @field_validator("pii_keys")
    @classmethod
    def _pii_keys_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                FieldCipher.from_secret(value.get_secret_value())
            except KeyringError as exc:  # its message never quotes the setting
                raise ValueError(str(exc)) from None
        return value

    @field_validator("auto_approve_entity_types")
    @classmethod
    def _known_entity_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {t.value for t in EntityType})
        if unknown:
            raise ValueError(f"unknown entity types: {', '.join(unknown)}")
        return value

    @field_validator("licence_types")
    @classmethod
    def _licence_types_consistent(cls, value: list[LicenceType]) -> list[LicenceType]:
        codes = [t.code for t in value]
        if len(set(codes)) != len(codes):
            raise ValueError("licence type codes must be unique")
        unknown = sorted({r for t in value for r in t.requires_licences} - set(codes))
        if unknown:
            raise ValueError(f"required licence types not configured: {', '.join(unknown)}")
        return value

    def licence_type(self, code: str) -> LicenceType | None:
        return next((t for t in self.licence_types if t.code == code), None)

    @model_validator(mode="after")
    def _pii_keys_required_in_production(self) -> RegistrationSettings:
        if self.node.environment == "production" and (
            self.pii_keys is None or DEVELOPMENT_PII_KEYS in self.pii_keys.get_secret_value()
        ):
            raise ValueError("TONGBAN_REGISTRATION_PII_KEYS is required in production")
        return self

    def field_cipher(self) -> FieldCipher:
        """The cipher sealing personal identifiers (the development key when unset)."""
        secret = self.pii_keys.get_secret_value() if self.pii_keys else DEVELOPMENT_PII_KEYS
        return FieldCipher.from_secret(secret)
