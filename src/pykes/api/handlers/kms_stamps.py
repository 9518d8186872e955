"""What every KMS API answer about a stored record carries: who created it (``h1:``)
and when (``CreatedAt``, left unset for the zero time, as kms-go's server does)."""

from __future__ import annotations

from typing import Any, TypeVar

from pykes.kms.identity import from_kes

Answer = TypeVar("Answer", bound=Any)


def stamped(answer: Answer, created_at_ns: int | None, created_by: str) -> Answer:
    """``answer`` (a response message with ``CreatedAt`` and ``CreatedBy``) stamped with
    a record's creation time and creator."""
    answer.CreatedBy = from_kes(created_by)
    if created_at_ns:
        answer.CreatedAt.FromNanoseconds(created_at_ns)
    return answer
