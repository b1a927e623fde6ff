"""Pairwise subject identifiers: each department sees a person under a pseudonym of its own
(OpenID Connect Core §8.1), stable for that department and unlinkable across departments
without identity's key."""

#: Mapping pseudonyms to persons and back: platform services acting under a grant, and
#: operators. Never a department's (enrolment refuses it), or pairwise subjects mean nothing.
RESOLVE_SCOPE = "identity:pairwise:resolve"
#: Deriving a department's pseudonym from a resident ID number, registered person or not:
#: platform services (data-exchange). Never a department's token, whatever its scopes.
DERIVE_SCOPE = "identity:pairwise:derive"
