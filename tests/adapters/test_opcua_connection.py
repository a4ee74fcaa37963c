"""asyncua's status errors as ours: the status named, retriable unless configuration."""

from __future__ import annotations

import pytest
from asyncua import ua

from adapters.errors import ConfigurationError, TransportError
from adapters.opcua.connection import translate

SC = ua.StatusCodes
CASES = [
    (
        ua.UaStatusCodeError(SC.BadUserAccessDenied),
        ConfigurationError,
        "plc: BadUserAccessDenied: User does not have permission to perform the requested "
        "operation.",
    ),
    (ua.uaerrors.BadTimeout(), TransportError, "plc: BadTimeout: The operation timed out."),
    (ua.UaStatusCodeError(0x80FF0000), TransportError, "plc: Bad (0x80FF0000)"),
    (
        ua.UaStatusCodeErrors([SC.Good, SC.BadNodeIdUnknown]),
        TransportError,
        "plc: Good, BadNodeIdUnknown",
    ),
]


@pytest.mark.parametrize(("exc", "kind", "text"), CASES)
def test_status_errors_are_named(exc: Exception, kind: type[Exception], text: str) -> None:
    err = translate(exc, "plc")
    assert type(err) is kind
    assert str(err) == text
    assert err.retriable is (kind is TransportError)
